/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Step cache tests: transactions, crash leftovers, concurrent writers (with
 * fork), pruning, rm_rf on odd trees, the index. Every test works in its own
 * directory under /var/tmp (a real disk file system, as the cache uses) and
 * removes it. Some need root (mknod, overlay, setuid); they run as root in
 * CI and return early, passing, otherwise.
 */
#include "harness.h"

#include "base/hash.h"
#include "os/fs.h"
#include "provision/cache.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>

static char *test_dir(void) {
        char *d = xstrdup("/var/tmp/kiln-test-cache.XXXXXX");
        if (!mkdtemp(d))
                abort();
        return d;
}

static void key_of(char out[CACHE_KEY_LEN + 1], const char *seed) {
        if (hash_sha256_hex(seed, strlen(seed), out) < 0)
                abort();
}

static bool exists(const char *path) {
        struct stat st;
        return lstat(path, &st) == 0;
}

static void put(const char *path, const char *text) {
        FILE *f = fopen(path, "w");
        if (!f)
                abort();
        fputs(text, f);
        fclose(f);
}

static void put_size(const char *path, size_t n) {
        _cleanup_free_ char *buf = xcalloc(1, n ? n : 1);
        memset(buf, 'x', n);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, buf, n) != (ssize_t)n)
                abort();
        close(fd);
}

/* Names in a directory, . and .. excepted; -1 when it cannot be read. */
static int count_dir(const char *path) {
        DIR *d = opendir(path);
        if (!d)
                return -1;
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static int count_sub(const char *dir, const char *sub) {
        _cleanup_free_ char *p = xasprintf("%s/%s", dir, sub);
        return count_dir(p);
}

/* Begins key, writes `bytes` into tree/data, commits with label. */
static int add_entry(struct cache *c, const char *key, size_t bytes, const char *label) {
        struct cache_txn *t = NULL;
        int r = cache_begin(c, key, &t);
        if (r != 0)
                return r < 0 ? r : -EEXIST;
        _cleanup_free_ char *f = xasprintf("%s/data", cache_txn_tree(t));
        put_size(f, bytes);
        _cleanup_free_ char *meta = xasprintf("{\"label\": \"%s\", \"parent\": null}", label);
        return cache_commit(t, meta);
}

static int wait_child(pid_t pid) {
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void set_used(const char *dir, const char *key, time_t t) {
        _cleanup_free_ char *p = xasprintf("%s/entries/%s/used", dir, key);
        struct timespec ts[2] = {{t, 0}, {t, 0}};
        if (utimensat(AT_FDCWD, p, ts, 0) < 0)
                abort();
}

static void round_trip(struct cache *c, struct cache_txn *t, const char *key);

TEST(cache_begin_commit_has_round_trip) {
        _cleanup_free_ char *dir = test_dir();
        _cleanup_free_ char *cdir = xasprintf("%s/a/b/cache", dir); /* mkdir -p */
        struct cache *c = NULL;
        CHECK_INT(cache_open(cdir, &c), ==, 0);
        if (!c)
                return;
        char key[CACHE_KEY_LEN + 1];
        key_of(key, "round trip");
        CHECK(!cache_has(c, key));
        CHECK_INT(cache_read_meta(c, key, &(char *){NULL}), ==, -ENOENT);

        struct cache_txn *t = NULL;
        CHECK_INT(cache_begin(c, key, &t), ==, 0);
        CHECK(t != NULL);
        if (t)
                round_trip(c, t, key);
        cache_close(c);
        CHECK_INT(rm_rf(dir), ==, 0);
}

static void round_trip(struct cache *c, struct cache_txn *t, const char *key) {
        CHECK(startswith(cache_txn_tree(t), cache_dir(c)) != NULL);
        CHECK(endswith(cache_txn_tree(t), "/tree"));
        _cleanup_free_ char *f = xasprintf("%s/hello", cache_txn_tree(t));
        put(f, "hello\n");
        /* what an overlay leaves next to the layer: work/work, mode 000 */
        _cleanup_free_ char *work = xasprintf("%s/work", cache_txn_dir(t));
        _cleanup_free_ char *ww = xasprintf("%s/work", work);
        CHECK(mkdir(work, 0700) == 0 && mkdir(ww, 0700) == 0);
        _cleanup_free_ char *wf = xasprintf("%s/x", ww);
        put(wf, "x");
        CHECK(chmod(ww, 0) == 0);
        CHECK_INT(cache_commit(t, "{\"label\": \"base step 1 (shell)\", \"parent\": null,\n"
                                  " \"params\": {\"s\": \"\\u00e9\\\"\"}}"),
                  ==, 0);

        CHECK(cache_has(c, key));
        _cleanup_free_ char *tree = cache_entry_tree(c, key);
        _cleanup_free_ char *hello = xasprintf("%s/hello", tree);
        CHECK(exists(hello));
        _cleanup_free_ char *edir = xasprintf("%s/entries/%s", cache_dir(c), key);
        CHECK_INT(count_dir(edir), ==, 3); /* tree, meta.json, used */
        CHECK_INT(count_sub(cache_dir(c), "tmp"), ==, 0);

        _cleanup_free_ char *json = NULL;
        CHECK_INT(cache_read_meta(c, key, &json), ==, 0);
        CHECK(json && strstr(json, "\"meta\":{\"label\": \"base step 1 (shell)\""));
        CHECK(json && strstr(json, "\"size\":"));
        CHECK(json && strstr(json, key));

        struct cache_entry_info *v = NULL;
        size_t n = 0;
        CHECK_INT(cache_list(c, &v, &n), ==, 0);
        CHECK_INT(n, ==, 1);
        if (n == 1) {
                CHECK_STREQ(v[0].key, key);
                CHECK_STREQ(v[0].label, "base step 1 (shell)");
                CHECK(v[0].size >= 4096); /* at least the file's block */
                CHECK(v[0].created > time(NULL) - 60 && v[0].created <= time(NULL));
                CHECK(v[0].last_used >= v[0].created);
                /* the creation time is the metadata's, not the tree's mtime
                 * (images take their timestamps from it) */
                time_t created = 0;
                struct timespec old[2] = {{.tv_sec = 1000}, {.tv_sec = 1000}};
                CHECK(utimensat(AT_FDCWD, tree, old, 0) == 0);
                CHECK_INT(cache_entry_created(c, key, &created), ==, 0);
                CHECK_INT(created, ==, v[0].created);
        }
        cache_entry_info_free(v, n);
        time_t when = 0;
        CHECK_INT(cache_entry_created(c, "0123", &when), ==, -EINVAL);
        char other[CACHE_KEY_LEN + 1];
        key_of(other, "not there");
        CHECK_INT(cache_entry_created(c, other, &when), ==, -ENOENT);
}

TEST(cache_second_begin_finds_entry) {
        _cleanup_free_ char *dir = test_dir();
        struct cache *c = NULL;
        CHECK_INT(cache_open(dir, &c), ==, 0);
        char key[CACHE_KEY_LEN + 1];
        key_of(key, "twice");
        CHECK_INT(add_entry(c, key, 10, "once"), ==, 0);
        struct cache_txn *t = (struct cache_txn *)1;
        CHECK_INT(cache_begin(c, key, &t), ==, 1);
        CHECK(t == NULL);
        CHECK_INT(count_sub(dir, "tmp"), ==, 0);
        cache_close(c);
        CHECK_INT(rm_rf(dir), ==, 0);
}

TEST(cache_abort_leaves_nothing) {
        _cleanup_free_ char *dir = test_dir();
        struct cache *c = NULL;
        CHECK_INT(cache_open(dir, &c), ==, 0);
        char key[CACHE_KEY_LEN + 1];
        key_of(key, "abort");
        struct cache_txn *t = NULL;
        CHECK_INT(cache_begin(c, key, &t), ==, 0);
        _cleanup_free_ char *f = xasprintf("%s/file", cache_txn_tree(t));
        put(f, "data");
        CHECK_INT(count_sub(dir, "tmp"), ==, 1);
        cache_abort(t);
        cache_abort(NULL);
        CHECK(!cache_has(c, key));
        CHECK_INT(count_sub(dir, "tmp"), ==, 0);
        CHECK_INT(count_sub(dir, "entries"), ==, 0);
        CHECK_INT(count_sub(dir, "locks"), ==, 0); /* no lock file left behind */

        /* Invalid metadata: the commit fails and discards the transaction. */
        CHECK_INT(cache_begin(c, key, &t), ==, 0);
        CHECK_INT(cache_commit(t, "{\"a\": [1, 2}"), ==, -EINVAL);
        CHECK(!cache_has(c, key));
        CHECK_INT(count_sub(dir, "tmp"), ==, 0);
        cache_close(c);
        CHECK_INT(rm_rf(dir), ==, 0);
}

TEST(cache_rejects_invalid_keys) {
        _cleanup_free_ char *dir = test_dir();
        struct cache *c = NULL;
        CHECK_INT(cache_open(dir, &c), ==, 0);
        char good[CACHE_KEY_LEN + 1];
        key_of(good, "good");
        _cleanup_free_ char *upper = xstrdup(good);
        for (char *p = upper; *p; p++)
                if (*p >= 'a' && *p <= 'f')
                        *p = (char)(*p - 'a' + 'A');
        _cleanup_free_ char *longer = xasprintf("%s0", good);
        _cleanup_free_ char *inject = xasprintf("../../../../../../../../../../../../../../../tmp/%.16s", good);
        const char *bad[] = {"", "abc", good + 1, upper, longer, inject, "../entries"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                struct cache_txn *t = NULL;
                char *json = NULL;
                CHECK_INT(cache_begin(c, bad[i], &t), ==, -EINVAL);
                CHECK(!cache_has(c, bad[i]));
                CHECK_INT(cache_read_meta(c, bad[i], &json), ==, -EINVAL);
                CHECK(cache_entry_tree(c, bad[i]) == NULL);
                CHECK_INT(cache_remove(c, bad[i]), ==, -EINVAL);
                CHECK_INT(cache_index_set(c, "b", 1, bad[i]), ==, -EINVAL);
        }
        CHECK_INT(cache_begin(c, NULL, &(struct cache_txn *){NULL}), ==, -EINVAL);
        CHECK_INT(count_sub(dir, "locks"), ==, 0);
        CHECK_INT(count_sub(dir, "tmp"), ==, 0);
        cache_close(c);
        CHECK_INT(rm_rf(dir), ==, 0);
}

TEST(cache_open_removes_crashed_writer_leftovers) {
        _cleanup_free_ char *dir = test_dir();
        char key[CACHE_KEY_LEN + 1];
        key_of(key, "crash");
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                struct cache *c = NULL;
                struct cache_txn *t = NULL;
                if (cache_open(dir, &c) < 0 || cache_begin(c, key, &t) != 0)
                        _exit(1);
                char *f = xasprintf("%s/usr", cache_txn_tree(t));
                mkdir(f, 0755);
                free(f);
                f = xasprintf("%s/usr/file", cache_txn_tree(t));
                put(f, "half-written");
                _exit(0); /* no commit: the kernel drops the lock */
        }
        CHECK_INT(wait_child(pid), ==, 0);
        CHECK_INT(count_sub(dir, "tmp"), ==, 1);

        struct cache *c = NULL;
        CHECK_INT(cache_open(dir, &c), ==, 0);
        CHECK_INT(count_sub(dir, "tmp"), ==, 0);
        CHECK(!cache_has(c, key));
        CHECK_INT(count_sub(dir, "entries"), ==, 0);
        /* and the key can be built now */
        CHECK_INT(add_entry(c, key, 1, "rebuilt"), ==, 0);
        CHECK(cache_has(c, key));
        cache_close(c);
        CHECK_INT(rm_rf(dir), ==, 0);
}

/* Two processes begin the same key: the first builds it, the second waits
 * for the lock and finds the entry. The second's cache_open runs while the
 * first is writing and must leave its tmp dir alone. */
TEST(cache_concurrent_writers_build_once) {
        _cleanup_free_ char *dir = test_dir();
        char key[CACHE_KEY_LEN + 1];
        key_of(key, "concurrent");
        int ready[2], go[2];
        CHECK(pipe(ready) == 0 && pipe(go) == 0);
        fflush(stdout);
        pid_t a = fork();
        if (a == 0) {
                struct cache *c = NULL;
                struct cache_txn *t = NULL;
                if (cache_open(dir, &c) < 0 || cache_begin(c, key, &t) != 0)
                        _exit(1);
                char *f = xasprintf("%s/built-by-a", cache_txn_tree(t));
                put(f, "a");
                char ch = 'r';
                if (write(ready[1], &ch, 1) != 1 || read(go[0], &ch, 1) != 1)
                        _exit(2);
                if (!exists(f))
                        _exit(3); /* someone removed a live writer's files */
                free(f);
                _exit(cache_commit(t, "{\"label\": \"a\"}") == 0 ? 10 : 4);
        }
        char ch;
        CHECK(read(ready[0], &ch, 1) == 1);
        pid_t b = fork();
        if (b == 0) {
                struct cache *c = NULL;
                struct cache_txn *t = NULL;
                if (cache_open(dir, &c) < 0)
                        _exit(1);
                int r = cache_begin(c, key, &t);
                if (r == 0) {
                        cache_abort(t);
                        _exit(5); /* built it twice */
                }
                _exit(r == 1 ? 11 : 6);
        }
        /* b must be waiting for the lock, not done */
        struct timespec pause = {0, 300 * 1000 * 1000};
        nanosleep(&pause, NULL);
        int status;
        CHECK_INT(waitpid(b, &status, WNOHANG), ==, 0);
        CHECK_INT(count_sub(dir, "tmp"), ==, 1); /* b's cache_open spared a's dir */
        CHECK(write(go[1], "g", 1) == 1);
        CHECK_INT(wait_child(a), ==, 10);
        CHECK_INT(wait_child(b), ==, 11);
        close(ready[0]), close(ready[1]), close(go[0]), close(go[1]);

        struct cache *c = NULL;
        CHECK_INT(cache_open(dir, &c), ==, 0);
        CHECK(cache_has(c, key));
        _cleanup_free_ char *f = xasprintf("%s/entries/%s/tree/built-by-a", dir, key);
        CHECK(exists(f));
        CHECK_INT(count_sub(dir, "tmp"), ==, 0);
        cache_close(c);
        CHECK_INT(rm_rf(dir), ==, 0);
}

/* A aborts (unlinking the lock file) while B waits for the lock: B must
 * end up holding the lock at the path, not a lock on the unlinked file, or
 * a third writer could take the key at the same time. */
TEST(cache_lock_survives_unlink_by_aborting_holder) {
        _cleanup_free_ char *dir = test_dir();
        char key[CACHE_KEY_LEN + 1];
        key_of(key, "unlinked lock");
        int a_ready[2], a_go[2], b_began[2], b_go[2];
        CHECK(pipe(a_ready) == 0 && pipe(a_go) == 0 && pipe(b_began) == 0 && pipe(b_go) == 0);
        char ch;
        fflush(stdout);
        pid_t a = fork();
        if (a == 0) {
                struct cache *c = NULL;
                struct cache_txn *t = NULL;
                if (cache_open(dir, &c) < 0 || cache_begin(c, key, &t) != 0)
                        _exit(1);
                if (write(a_ready[1], "r", 1) != 1 || read(a_go[0], &ch, 1) != 1)
                        _exit(2);
                cache_abort(t);
                _exit(0);
        }
        CHECK(read(a_ready[0], &ch, 1) == 1);
        pid_t b = fork();
        if (b == 0) {
                struct cache *c = NULL;
                struct cache_txn *t = NULL;
                if (cache_open(dir, &c) < 0 || cache_begin(c, key, &t) != 0)
                        _exit(1);
                if (write(b_began[1], "b", 1) != 1 || read(b_go[0], &ch, 1) != 1)
                        _exit(2);
                cache_abort(t);
                _exit(0);
        }
        struct timespec pause = {0, 200 * 1000 * 1000};
        nanosleep(&pause, NULL); /* b is waiting in flock */
        CHECK(write(a_go[1], "g", 1) == 1);
        CHECK_INT(wait_child(a), ==, 0);
        CHECK(read(b_began[0], &ch, 1) == 1);
        _cleanup_free_ char *lp = xasprintf("%s/locks/%s.lock", dir, key);
        int fd = open(lp, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        CHECK(flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK);
        close(fd);
        CHECK(write(b_go[1], "g", 1) == 1);
        CHECK_INT(wait_child(b), ==, 0);
        int fds[] = {a_ready[0], a_ready[1], a_go[0], a_go[1], b_began[0], b_began[1], b_go[0], b_go[1]};
        for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
                close(fds[i]);
        CHECK_INT(count_sub(dir, "tmp"), ==, 0);
        CHECK_INT(rm_rf(dir), ==, 0);
}

TEST(cache_prune_removes_lru_and_skips_locked) {
        _cleanup_free_ char *dir = test_dir();
        struct cache *c = NULL;
        CHECK_INT(cache_open(dir, &c), ==, 0);
        char a[CACHE_KEY_LEN + 1], b[CACHE_KEY_LEN + 1], k3[CACHE_KEY_LEN + 1];
        key_of(a, "prune a");
        key_of(b, "prune b");
        key_of(k3, "prune c");
        const size_t MiB = 1 << 20;
        CHECK_INT(add_entry(c, a, MiB, "a"), ==, 0);
        CHECK_INT(add_entry(c, b, MiB, "b"), ==, 0);
        CHECK_INT(add_entry(c, k3, MiB, "c"), ==, 0);
        set_used(dir, a, 1000000000);
        set_used(dir, b, 1000000100);
        set_used(dir, k3, 1000000200);
        CHECK(cache_has(c, a)); /* a becomes the most recently used */

        struct cache_entry_info *v = NULL;
        size_t n = 0;
        CHECK_INT(cache_list(c, &v, &n), ==, 0);
        CHECK_INT(n, ==, 3);
        uint64_t total = 0;
        if (n == 3) {
                CHECK_STREQ(v[0].key, a);
                CHECK_STREQ(v[1].key, k3);
                CHECK_STREQ(v[2].key, b);
                CHECK_STREQ(v[2].label, "b");
                CHECK_INT(v[2].last_used, ==, 1000000100);
                for (size_t i = 0; i < n; i++) {
                        CHECK(v[i].size >= MiB && v[i].size < 2 * MiB);
                        total += v[i].size;
                }
        }
        cache_entry_info_free(v, n);

        /* Nothing to do under the limit. */
        uint64_t freed = 1;
        size_t removed = 1;
        CHECK_INT(cache_prune(c, total, &freed, &removed), ==, 0);
        CHECK_INT(freed, ==, 0);
        CHECK_INT(removed, ==, 0);

        /* b is the oldest but a build holds its lock: c goes instead. */
        _cleanup_free_ char *lp = xasprintf("%s/locks/%s.lock", dir, b);
        int lfd = open(lp, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
        CHECK(lfd >= 0 && flock(lfd, LOCK_EX) == 0);
        CHECK_INT(cache_prune(c, total - 1, &freed, &removed), ==, 0);
        CHECK_INT(removed, ==, 1);
        CHECK(freed >= MiB);
        CHECK(cache_has(c, a));
        CHECK(!cache_has(c, k3));
        _cleanup_free_ char *bdir = xasprintf("%s/entries/%s", dir, b);
        CHECK(exists(bdir)); /* (not cache_has: that would make b recent) */
        CHECK_INT(count_sub(dir, "tmp"), ==, 0);

        /* With the lock free, everything can go. */
        close(lfd);
        CHECK_INT(cache_prune(c, 0, &freed, &removed), ==, 0);
        CHECK_INT(removed, ==, 2);
        CHECK_INT(cache_list(c, &v, &n), ==, 0);
        CHECK_INT(n, ==, 0);
        cache_entry_info_free(v, n);
        CHECK_INT(count_sub(dir, "tmp"), ==, 0);
        CHECK_INT(count_sub(dir, "locks"), ==, 0);
        cache_close(c);
        CHECK_INT(rm_rf(dir), ==, 0);
}

TEST(cache_remove_entry) {
        _cleanup_free_ char *dir = test_dir();
        struct cache *c = NULL;
        CHECK_INT(cache_open(dir, &c), ==, 0);
        char key[CACHE_KEY_LEN + 1];
        key_of(key, "remove");
        CHECK_INT(cache_remove(c, key), ==, 0); /* absent: fine */
        CHECK_INT(add_entry(c, key, 100, "r"), ==, 0);
        CHECK(cache_has(c, key));
        CHECK_INT(cache_remove(c, key), ==, 0);
        CHECK(!cache_has(c, key));
        CHECK_INT(count_sub(dir, "tmp"), ==, 0);
        CHECK_INT(count_sub(dir, "entries"), ==, 0);
        CHECK_INT(add_entry(c, key, 100, "again"), ==, 0);
        CHECK(cache_has(c, key));
        cache_close(c);
        CHECK_INT(rm_rf(dir), ==, 0);
}

TEST(rm_rf_odd_trees) {
        _cleanup_free_ char *dir = test_dir();
        _cleanup_free_ char *outside = xasprintf("%s/outside", dir);
        _cleanup_free_ char *precious = xasprintf("%s/outside/precious", dir);
        _cleanup_free_ char *t = xasprintf("%s/tree", dir);
        CHECK(mkdir(outside, 0755) == 0);
        put(precious, "keep me");
        CHECK(mkdir(t, 0755) == 0);

        _cleanup_free_ char *locked = xasprintf("%s/locked", t);
        _cleanup_free_ char *inner = xasprintf("%s/locked/inner", t);
        _cleanup_free_ char *deep = xasprintf("%s/locked/inner/file", t);
        CHECK(mkdir(locked, 0755) == 0 && mkdir(inner, 0755) == 0);
        put(deep, "x");
        CHECK(chmod(inner, 0) == 0 && chmod(locked, 0) == 0);
        _cleanup_free_ char *fifo = xasprintf("%s/fifo", t);
        CHECK(mkfifo(fifo, 0644) == 0);
        _cleanup_free_ char *link = xasprintf("%s/link-to-outside", t);
        CHECK(symlink(outside, link) == 0);
        _cleanup_free_ char *flink = xasprintf("%s/link-to-file", t);
        CHECK(symlink(precious, flink) == 0);
        _cleanup_free_ char *dangling = xasprintf("%s/dangling", t);
        CHECK(symlink("/nonexistent/x", dangling) == 0);
        if (geteuid() == 0) {
                _cleanup_free_ char *wh = xasprintf("%s/whiteout", t);
                CHECK(mknod(wh, S_IFCHR | 0, makedev(0, 0)) == 0);
        }
        _cleanup_free_ char *ro = xasprintf("%s/readonly-dir", t);
        _cleanup_free_ char *rof = xasprintf("%s/readonly-dir/f", t);
        CHECK(mkdir(ro, 0755) == 0);
        put(rof, "r");
        CHECK(chmod(ro, 0555) == 0);

        CHECK_INT(rm_rf(t), ==, 0);
        CHECK(!exists(t));
        CHECK(exists(precious));
        CHECK(exists(outside));
        CHECK_INT(rm_rf(t), ==, 0); /* already gone */

        /* a symlink given as the path is removed, not followed */
        _cleanup_free_ char *top = xasprintf("%s/top-link", dir);
        CHECK(symlink(outside, top) == 0);
        CHECK_INT(rm_rf(top), ==, 0);
        CHECK(!exists(top));
        CHECK(exists(precious));
        CHECK_INT(rm_rf("/"), ==, -EPERM);
        CHECK_INT(rm_rf(""), ==, -EINVAL);
        CHECK_INT(rm_rf(dir), ==, 0);
        CHECK(!exists(dir));
}

/* Without root's DAC override, mode 000 and 0555 dirs need chmod u+rwx. */
TEST(rm_rf_unprivileged_fixes_modes) {
        if (geteuid() != 0)
                return; /* needs setuid to test as another user */
        _cleanup_free_ char *dir = test_dir();
        _cleanup_free_ char *t = xasprintf("%s/tree", dir);
        CHECK(chown(dir, 65534, 65534) == 0);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                if (setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(1);
                char *p;
                if (mkdir(t, 0755) < 0)
                        _exit(2);
                p = xasprintf("%s/a", t), mkdir(p, 0755), free(p);
                p = xasprintf("%s/a/b", t), mkdir(p, 0755), free(p);
                p = xasprintf("%s/a/b/f", t), put(p, "f"), free(p);
                p = xasprintf("%s/a/b", t), chmod(p, 0), free(p);
                p = xasprintf("%s/a", t), chmod(p, 0), free(p);
                p = xasprintf("%s/ro", t), mkdir(p, 0755), free(p);
                p = xasprintf("%s/ro/f", t), put(p, "f"), free(p);
                p = xasprintf("%s/ro", t), chmod(p, 0500), free(p);
                if (rm_rf(t) != 0)
                        _exit(3);
                _exit(exists(t) ? 4 : 0);
        }
        CHECK_INT(wait_child(pid), ==, 0);
        CHECK_INT(rm_rf(dir), ==, 0);
}

/* A mount inside the tree is not descended into (one file system only). */
TEST(rm_rf_stays_on_one_file_system) {
        if (geteuid() != 0)
                return;
        _cleanup_free_ char *dir = test_dir();
        _cleanup_free_ char *t = xasprintf("%s/tree", dir);
        _cleanup_free_ char *mnt = xasprintf("%s/tree/mnt", dir);
        CHECK(mkdir(t, 0755) == 0 && mkdir(mnt, 0755) == 0);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
                    mount("tmpfs", mnt, "tmpfs", 0, "size=1m") < 0)
                        _exit(1);
                char *f = xasprintf("%s/on-tmpfs", mnt);
                put(f, "t");
                char *beside = xasprintf("%s/beside", t);
                put(beside, "b");
                int r = rm_rf(t);
                if (r >= 0)
                        _exit(2); /* the mount point cannot be removed */
                if (r != -EXDEV)
                        _exit(4); /* and says why */
                if (exists(beside))
                        _exit(5); /* what is on the same file system goes */
                _exit(exists(f) ? 0 : 3);
        }
        CHECK_INT(wait_child(pid), ==, 0);
        /* the child's mount namespace is gone: now it is an empty dir */
        CHECK_INT(rm_rf(t), ==, 0);
        CHECK_INT(rm_rf(dir), ==, 0);
}

static void overlay_upper(struct cache *c, struct cache_txn *t, const char *key, const char *lower,
                          const char *mnt);

/* A real overlay upper layer: whiteouts and a work dir the kernel made. */
TEST(cache_stores_overlay_upper) {
        if (geteuid() != 0)
                return;
        _cleanup_free_ char *dir = test_dir();
        _cleanup_free_ char *lower = xasprintf("%s/lower", dir);
        _cleanup_free_ char *lfile = xasprintf("%s/lower/gone", dir);
        _cleanup_free_ char *mnt = xasprintf("%s/mnt", dir);
        _cleanup_free_ char *cdir = xasprintf("%s/cache", dir);
        CHECK(mkdir(lower, 0755) == 0 && mkdir(mnt, 0755) == 0);
        put(lfile, "lower");
        struct cache *c = NULL;
        CHECK_INT(cache_open(cdir, &c), ==, 0);
        char key[CACHE_KEY_LEN + 1];
        key_of(key, "overlay");
        struct cache_txn *t = NULL;
        CHECK_INT(cache_begin(c, key, &t), ==, 0);
        if (t)
                overlay_upper(c, t, key, lower, mnt);
        cache_close(c);
        CHECK_INT(rm_rf(dir), ==, 0);
}

static void overlay_upper(struct cache *c, struct cache_txn *t, const char *key, const char *lower,
                          const char *mnt) {
        _cleanup_free_ char *work = xasprintf("%s/work", cache_txn_dir(t));
        CHECK(mkdir(work, 0700) == 0);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                char *opts = xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower,
                                       cache_txn_tree(t), work);
                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                        _exit(1);
                if (mount("overlay", mnt, "overlay", 0, opts) < 0)
                        _exit(77); /* no overlay here */
                char *p = xasprintf("%s/gone", mnt);
                if (unlink(p) < 0)
                        _exit(2);
                p = xasprintf("%s/new", mnt);
                put(p, "new");
                if (umount(mnt) < 0)
                        _exit(3);
                _exit(0);
        }
        int rc = wait_child(pid);
        if (rc == 77) { /* no overlay support here */
                cache_abort(t);
                return;
        }
        CHECK_INT(rc, ==, 0);
        _cleanup_free_ char *wh = xasprintf("%s/gone", cache_txn_tree(t));
        struct stat st;
        CHECK(lstat(wh, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
        CHECK_INT(cache_commit(t, "{\"label\": \"overlay\"}"), ==, 0);
        _cleanup_free_ char *ework = xasprintf("%s/entries/%s/work", cache_dir(c), key);
        CHECK(!exists(ework));
        CHECK(cache_has(c, key));
        CHECK_INT(cache_remove(c, key), ==, 0);
        CHECK(!cache_has(c, key));
}

TEST(cache_index_round_trip) {
        _cleanup_free_ char *dir = test_dir();
        struct cache *c = NULL;
        CHECK_INT(cache_open(dir, &c), ==, 0);
        char k1[CACHE_KEY_LEN + 1], k2[CACHE_KEY_LEN + 1], got[CACHE_KEY_LEN + 1];
        key_of(k1, "index 1");
        key_of(k2, "index 2");
        CHECK_INT(cache_index_get(c, "slurm-login-x86_64", 3, got), ==, -ENOENT);
        CHECK_INT(cache_index_set(c, "slurm-login-x86_64", 3, k1), ==, 0);
        CHECK_INT(cache_index_get(c, "slurm-login-x86_64", 3, got), ==, 0);
        CHECK_STREQ(got, k1);
        CHECK_INT(cache_index_set(c, "slurm-login-x86_64", 3, k2), ==, 0); /* replaces */
        CHECK_INT(cache_index_get(c, "slurm-login-x86_64", 3, got), ==, 0);
        CHECK_STREQ(got, k2);
        CHECK_INT(cache_index_set(c, "slurm-login-x86_64", 0, k1), ==, 0);
        CHECK_INT(cache_index_get(c, "slurm-login-x86_64", 0, got), ==, 0);
        CHECK_STREQ(got, k1);
        CHECK_INT(cache_index_set(c, "A.b_c+d-1", 7, k1), ==, 0);
        _cleanup_free_ char *bdir = xasprintf("%s/index/slurm-login-x86_64", dir);
        CHECK_INT(count_dir(bdir), ==, 2); /* no temporary files left */

        char longest[129], too_long[130];
        memset(longest, 'a', 128), longest[128] = 0;
        memset(too_long, 'a', 129), too_long[129] = 0;
        CHECK_INT(cache_index_set(c, longest, 1, k1), ==, 0);
        const char *bad[] = {"", ".", "..", ".hidden", "a/b", "../x", "a b", "a\nb", "é", too_long};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                CHECK_INT(cache_index_set(c, bad[i], 1, k1), ==, -EINVAL);
                CHECK_INT(cache_index_get(c, bad[i], 1, got), ==, -EINVAL);
        }
        CHECK_INT(cache_index_set(c, NULL, 1, k1), ==, -EINVAL);

        /* a corrupt index file reads as malformed, not as a key */
        _cleanup_free_ char *f = xasprintf("%s/index/slurm-login-x86_64/9", dir);
        put(f, "not a key\n");
        CHECK_INT(cache_index_get(c, "slurm-login-x86_64", 9, got), ==, -EBADMSG);
        cache_close(c);
        CHECK_INT(rm_rf(dir), ==, 0);
}
