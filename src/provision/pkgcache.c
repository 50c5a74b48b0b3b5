/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pkgcache.c — the package cache (layout and trust in pkgcache.h).
 *
 * A file is entered by linking (or copying) it to tmp/<hex>.XXXXXX and
 * renaming that to sha256/<hex>; its by-name symlink is made beside it in
 * tmp/ and renamed over by-name/<file>. A rename either lands whole or not
 * at all, so a crash leaves at most a tmp/ leftover (removed by the next
 * pkgcache_init older than an hour: a live writer's file is seconds old).
 * Cleanup style: _cleanup_ attributes throughout.
 */
#include "provision/pkgcache.h"

#include "base/hash.h"
#include "base/util.h"
#include "os/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#define NAME_MAX_LEN 255
#define STALE_TMP_S 3600

static bool hex_valid(const char *s) {
        size_t n = 0;
        for (; s[n]; n++)
                if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
                        return false;
        return n == PKGCACHE_HEX_LEN;
}

/* An apt archive name: name_version_arch.deb, no slash, not hidden. */
static bool deb_name_valid(const char *s) {
        size_t n = strlen(s);
        return n > 4 && n <= NAME_MAX_LEN && s[0] != '.' && !strchr(s, '/') && endswith(s, ".deb");
}

int pkgcache_init(const char *dir) {
        static const char *const sub[] = {"sha256", "by-name", "tmp"};
        for (size_t i = 0; i < ARRAY_SIZE(sub); i++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", dir, sub[i]);
                int r = mkdir_p(p, 0755);
                if (r < 0)
                        return r;
        }
        /* crash leftovers */
        _cleanup_free_ char *tmp = xasprintf("%s/tmp", dir);
        char **names = NULL;
        if (fs_list(AT_FDCWD, tmp, &names, NULL) == 0) {
                time_t now = time(NULL);
                for (char **nm = names; *nm; nm++) {
                        _cleanup_free_ char *p = xasprintf("%s/%s", tmp, *nm);
                        struct stat st;
                        if (lstat(p, &st) == 0 && st.st_mtime + STALE_TMP_S < now)
                                (void)rm_rf(p);
                }
                fs_names_free(names);
        }
        return 0;
}

char *pkgcache_incoming(const char *dir) {
        char *p = xasprintf("%s/tmp/in.XXXXXX", dir);
        if (!mkdtemp(p)) {
                int e = errno;
                free(p);
                errno = e;
                return NULL;
        }
        return p;
}

/* Links or copies src to dst (which must not exist). */
static int link_or_copy(const char *src, const char *dst) {
        if (link(src, dst) == 0)
                return 0;
        if (errno != EXDEV && errno != EPERM && errno != EMLINK)
                return -errno;
        _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (in < 0)
                return -errno;
        _cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (out < 0)
                return -errno;
        struct stat st;
        if (fstat(in, &st) < 0)
                return -errno;
        int r = fs_copy_sparse(in, out, 0);
        if (r == 0 && ftruncate(out, st.st_size) < 0)
                r = -errno;
        if (r < 0)
                (void)unlink(dst);
        return r;
}

/* Points by-name/<name> at sha256/<hex>, replacing an older link. */
static int set_name(const char *dir, const char *name, const char *hex) {
        _cleanup_free_ char *target = xasprintf("../sha256/%s", hex);
        _cleanup_free_ char *tmp = xasprintf("%s/tmp/%s.XXXXXX", dir, hex);
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        /* mkostemp only reserved a unique name: the symlink takes its place */
        (void)unlink(tmp);
        if (symlink(target, tmp) < 0)
                return -errno;
        _cleanup_free_ char *dst = xasprintf("%s/by-name/%s", dir, name);
        if (rename(tmp, dst) < 0) {
                int r = -errno;
                (void)unlink(tmp);
                return r;
        }
        return 0;
}

/* Enters one file; 1 when it was new (or replaced a damaged copy), 0
 * when the cache had it, -errno. */
static int add_file(const char *dir, const char *path, const char *name) {
        /* a file the cache handed out (pkgcache_seed's hard link) comes back */
        _cleanup_free_ char *known = xasprintf("%s/by-name/%s", dir, name);
        struct stat a, b;
        if (stat(known, &b) == 0 && stat(path, &a) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
                return 0;
        char hex[SHA256_HEX_LEN + 1];
        int r = hash_sha256_file(path, hex);
        if (r < 0)
                return r;
        _cleanup_free_ char *dst = xasprintf("%s/sha256/%s", dir, hex);
        bool have = false;
        if (stat(dst, &b) == 0) {
                /* the cache's own file handed back (a hard link), or a copy
                 * with the content its name says */
                char got[SHA256_HEX_LEN + 1];
                have = (stat(path, &a) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) ||
                       (hash_sha256_file(dst, got) == 0 && streq(got, hex));
        }
        if (!have) {
                _cleanup_free_ char *tmp = xasprintf("%s/tmp/%s.XXXXXX", dir, hex);
                _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                (void)unlink(tmp);
                if ((r = link_or_copy(path, tmp)) < 0)
                        return r;
                if (chmod(tmp, 0644) < 0 || rename(tmp, dst) < 0) {
                        r = -errno;
                        (void)unlink(tmp);
                        return r;
                }
        }
        r = set_name(dir, name, hex);
        return r < 0 ? r : !have;
}

int pkgcache_add_dir(const char *dir, const char *src, size_t *ret_added) {
        char **names = NULL;
        int r = fs_list(AT_FDCWD, src, &names, NULL);
        if (r < 0)
                return r;
        size_t added = 0;
        for (char **nm = names; *nm; nm++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", src, *nm);
                struct stat st;
                if (!deb_name_valid(*nm) || lstat(p, &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                int k = add_file(dir, p, *nm);
                if (k > 0)
                        added++;
                if (k < 0 && r == 0)
                        r = k;
        }
        fs_names_free(names);
        int k = rm_rf(src);
        if (ret_added)
                *ret_added = added;
        return r < 0 ? r : k;
}

void pkgcache_touch(const char *dir, const char *hex) {
        if (!hex_valid(hex))
                return;
        _cleanup_free_ char *p = xasprintf("%s/sha256/%s", dir, hex);
        (void)utimensat(AT_FDCWD, p, NULL, 0);
}

/* The hex a by-name link points at ("../sha256/<hex>"), in buf; NULL
 * when it is not such a link. */
static const char *link_hex(const char *link, char buf[128]) {
        ssize_t tl = readlink(link, buf, 127);
        if (tl < 0)
                return NULL;
        buf[tl] = 0;
        const char *hex = startswith(buf, "../sha256/");
        return hex && hex_valid(hex) ? hex : NULL;
}

int pkgcache_seed(const char *dir, const char *dest, size_t *ret_n) {
        _cleanup_free_ char *byname = xasprintf("%s/by-name", dir);
        char **names = NULL;
        int r = fs_list(AT_FDCWD, byname, &names, NULL);
        if (r == -ENOENT) {
                if (ret_n)
                        *ret_n = 0;
                return 0;
        }
        if (r < 0)
                return r;
        size_t n = 0;
        for (char **nm = names; *nm; nm++) {
                if (!deb_name_valid(*nm))
                        continue;
                _cleanup_free_ char *link = xasprintf("%s/%s", byname, *nm);
                char target[128];
                const char *hex = link_hex(link, target);
                if (!hex) {
                        (void)unlink(link);
                        continue;
                }
                _cleanup_free_ char *file = xasprintf("%s/sha256/%s", dir, hex);
                char got[SHA256_HEX_LEN + 1];
                int k = hash_sha256_file(file, got);
                if (k == -ENOENT) { /* pruned */
                        (void)unlink(link);
                        continue;
                }
                if (k < 0 || !streq(got, hex)) {
                        /* damaged: never hand it out */
                        (void)pkgcache_remove(dir, hex);
                        continue;
                }
                _cleanup_free_ char *dst = xasprintf("%s/%s", dest, *nm);
                k = link_or_copy(file, dst);
                if (k == -EEXIST)
                        continue;
                if (k < 0) {
                        r = k;
                        break;
                }
                pkgcache_touch(dir, hex);
                n++;
        }
        fs_names_free(names);
        if (ret_n)
                *ret_n = n;
        return r;
}

int pkgcache_list(const char *dir, struct pkgcache_file **ret, size_t *ret_n) {
        _cleanup_free_ char *shadir = xasprintf("%s/sha256", dir);
        char **names = NULL;
        int r = fs_list(AT_FDCWD, shadir, &names, NULL);
        if (r == -ENOENT) {
                *ret = xcalloc(1, sizeof(**ret));
                *ret_n = 0;
                return 0;
        }
        if (r < 0)
                return r;
        struct pkgcache_file *v = NULL;
        size_t n = 0, cap = 0;
        for (char **nm = names; *nm; nm++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", shadir, *nm);
                struct stat st;
                if (!hex_valid(*nm) || lstat(p, &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                GROW(v, n, cap);
                v[n] = (struct pkgcache_file){.size = (uint64_t)st.st_blocks * 512,
                                              .last_used = st.st_mtim.tv_sec,
                                              .used = st.st_mtim};
                memcpy(v[n].hex, *nm, PKGCACHE_HEX_LEN + 1);
                n++;
        }
        fs_names_free(names);
        *ret = v ? v : xcalloc(1, sizeof(*v));
        *ret_n = n;
        return 0;
}

int pkgcache_remove(const char *dir, const char *hex) {
        if (!hex_valid(hex))
                return -EINVAL;
        _cleanup_free_ char *byname = xasprintf("%s/by-name", dir);
        char **names = NULL;
        if (fs_list(AT_FDCWD, byname, &names, NULL) == 0) {
                for (char **nm = names; *nm; nm++) {
                        _cleanup_free_ char *link = xasprintf("%s/%s", byname, *nm);
                        char target[128];
                        const char *h = link_hex(link, target);
                        if (h && streq(h, hex))
                                (void)unlink(link);
                }
                fs_names_free(names);
        }
        _cleanup_free_ char *file = xasprintf("%s/sha256/%s", dir, hex);
        if (unlink(file) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}
