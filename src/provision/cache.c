/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache.c — the step cache: entries are written in tmp/, published by one
 * rename, and guarded by one flock per key (the layout is in cache.h).
 *
 * Invariants
 *   - entries/<key> exists only complete: tree/, meta.json (fsynced) and
 *     `used`. It appears by rename(tmp/<x>, entries/<key>) and disappears by
 *     rename(entries/<key>, tmp/<y>) before it is deleted, so a reader sees
 *     either the whole entry or none.
 *   - Every tmp/ directory is named "<key>.XXXXXX" and is only created,
 *     filled, renamed or deleted by a process holding locks/<key>.lock
 *     (LOCK_EX). The key recorded in the name *is* the tmp dir's lock: when
 *     LOCK_EX|LOCK_NB on it succeeds, its writer is gone (the kernel drops
 *     flocks when a process dies), so the dir is a crash leftover and is
 *     removed — by cache_open for every key and by cache_begin for its own.
 *     A live writer's dir is never touched because its lock is held.
 *   - Lock files may be unlinked, but only by their holder and only when no
 *     entry is left behind (abort, stale cleanup, removal). A process that
 *     waited on an unlinked lock notices after flock() (its inode is no
 *     longer the one at the path) and starts over, so two holders can never
 *     coexist.
 *   - Last use is the mtime of entries/<key>/used, touched by cache_has;
 *     prune removes the oldest first.
 *   - flock belongs to the open file description: a child forked (without
 *     exec: the fds are O_CLOEXEC) during a transaction shares its lock
 *     until it exits.
 *
 * meta.json is a wrapper written by cache_commit:
 *     {"format":1,"key":"…","created":<unix s>,"size":<bytes>,"meta":<caller's JSON>}
 * `size` is the layer (tree/) on disk, st_blocks × 512, hard links counted
 * once. cache_read_meta returns this whole wrapper (the caller's JSON is its
 * "meta" member); cache_list reads created, size and meta.label from it.
 * The caller's JSON is validated before it is embedded, so the file is
 * always well-formed; both are read with base/json_read.h's bounded reader
 * (the spec layer's YAML loader would pull libyaml and diagnostics into
 * every cache listing).
 *
 * Durability: cache_commit calls syncfs() on the cache's file system before
 * the rename (fsync of every file of a layer would be a second walk; a
 * layer whose data did not reach the disk would be silently reused by key
 * after a crash), then fsyncs tmp/<x> and entries/.
 *
 * Why overlay layers — bench/cache-storage.sh, measured on 2026-11-21 on a
 * 2-vCPU Firecracker VM (Linux 6.18, ext4, Debian 12), tree of 216 MiB
 * (mmdebstrap --variant=apt bookworm, 8826 files); the step appends to
 * /etc/motd, adds a 1 MiB file and deletes one; median of 5 runs:
 *
 *     method      store s  restore s   KiB/step   vs overlay: store / restore / bytes
 *     overlay       0.021      0.006       1048   1x / 1x / 1x
 *     full copy     2.548      2.821     222180   120x / 455x / 212x
 *     tar+zstd -3   0.960      6.480      66732   45x / 1045x / 64x
 *     hardlinks     0.661      0.686       4900   31x / 111x / 4.6x (and unsafe)
 *
 * store = run the step and sync; restore = get a writable tree for the next
 * step that leaves the stored result intact. This VM's page allocation makes
 * big writes noisy (an earlier run: copy restore 0.93 s, tar store 0.72 s),
 * but the order of magnitude is stable: storing a layer costs its diff, any
 * snapshot costs the tree. Hard-link farms are unsafe besides: an in-place
 * write (>>) through a link changed the parent entry too, which the bench
 * checks and reports.
 */
#include "provision/cache.h"

#include "base/json.h"
#include "base/json_read.h"
#include "base/util.h"
#include "os/fs.h"
#include "provision/pkgcache.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#define META_JSON_MAX (1u << 20)            /* the caller's metadata */
#define META_FILE_MAX (META_JSON_MAX + 4096) /* with the wrapper */
/* How meta.json is read: the caller's JSON nests at most JSON_READ_MAX_DEPTH
 * levels, one more with the wrapper; its strings are kept byte for byte
 * (json.h's writer passes bytes that are not UTF-8 through, a file name in
 * a step's inputs can be any bytes). */
static const struct json_read_opts meta_opts = {.max_bytes = META_JSON_MAX, .raw_bytes = true};
static const struct json_read_opts wrapper_opts = {
        .max_bytes = META_FILE_MAX, .max_depth = JSON_READ_MAX_DEPTH + 1, .raw_bytes = true};
#define BUILD_NAME_MAX 128
#define INDEX_FILE_MAX 256

struct cache {
        char *dir; /* absolute */
        int fd;    /* the cache directory */
};

struct cache_txn {
        struct cache *cache; /* borrowed: must outlive the transaction */
        char key[CACHE_KEY_LEN + 1];
        int lock_fd;
        char *name; /* "<key>.XXXXXX" under tmp/ */
        char *dir;  /* absolute tmp/<name> */
        char *tree; /* absolute tmp/<name>/tree */
};

static inline void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}
#define _cleanup_closedir_ _cleanup_(closedirp)

static int take_fd(int *fd) {
        int r = *fd;
        *fd = -1;
        return r;
}

static bool key_valid(const char *key) {
        if (!key)
                return false;
        for (size_t i = 0; i < CACHE_KEY_LEN; i++)
                if (!((key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'f')))
                        return false; /* also stops at a short key's NUL */
        return key[CACHE_KEY_LEN] == 0;
}

/* [A-Za-z0-9._+-]{1,128}, not starting with a dot (so never "." or ".."). */
static bool build_name_valid(const char *s) {
        if (!s || !s[0] || s[0] == '.')
                return false;
        size_t n = 0;
        for (; s[n]; n++) {
                char ch = s[n];
                if (n >= BUILD_NAME_MAX)
                        return false;
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '+' || ch == '-'))
                        return false;
        }
        return true;
}

/* ---- small file helpers ------------------------------------------------------------------ */

/* Creates (or truncates) name under dfd with data, fsynced. */
static int write_file_at(int dfd, const char *name, const char *data, size_t len) {
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        int r = write_all(fd, data, len);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        return r;
}

/* mkdir -p for the cache directory itself. */
/* ---- locks ------------------------------------------------------------------------------- */

#define LOCK_PATH_MAX (sizeof("locks/") + CACHE_KEY_LEN + sizeof(".lock"))

static void lock_path(char buf[LOCK_PATH_MAX], const char *key) {
        snprintf(buf, LOCK_PATH_MAX, "locks/%s.lock", key);
}

/* Takes locks/<key>.lock exclusively, waiting when wait is set. Returns the
 * locked fd, -EAGAIN when busy and !wait, -EINTR when a signal interrupted
 * the wait, or another -errno. */
static int lock_key(struct cache *c, const char *key, bool wait) {
        char path[LOCK_PATH_MAX];
        lock_path(path, key);
        for (;;) {
                _cleanup_close_ int fd =
                        openat(c->fd, path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
                if (fd < 0)
                        return -errno;
                if (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0)
                        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
                /* The previous holder may have unlinked the file while we
                 * waited: then our lock protects nothing; start over. */
                struct stat held, now;
                if (fstat(fd, &held) < 0)
                        return -errno;
                if (fstatat(c->fd, path, &now, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT)
                                return -errno;
                        continue;
                }
                if (held.st_dev == now.st_dev && held.st_ino == now.st_ino)
                        return take_fd(&fd);
        }
}

/* Releases a key lock; with drop, unlinks the lock file first (only while
 * holding it: see the invariants above). */
static void unlock_key(struct cache *c, const char *key, int fd, bool drop) {
        if (fd < 0)
                return;
        if (drop) {
                char path[LOCK_PATH_MAX];
                lock_path(path, key);
                (void)unlinkat(c->fd, path, 0);
        }
        close(fd);
}

static bool entry_exists(struct cache *c, const char *key) {
        char path[sizeof("entries/") + CACHE_KEY_LEN];
        snprintf(path, sizeof(path), "entries/%s", key);
        struct stat st;
        return fstatat(c->fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* ---- tmp/ leftovers ---------------------------------------------------------------------- */

/* The key a tmp/ name belongs to ("<key>.XXXXXX"), or false. */
static bool tmp_name_key(const char *name, char key[CACHE_KEY_LEN + 1]) {
        if (strlen(name) <= CACHE_KEY_LEN + 1 || name[CACHE_KEY_LEN] != '.')
                return false;
        memcpy(key, name, CACHE_KEY_LEN);
        key[CACHE_KEY_LEN] = 0;
        return key_valid(key);
}

/* Lists tmp/ names: all of them, or those of one key. */
static int tmp_names(struct cache *c, const char *only_key, char ***ret, size_t *ret_n) {
        char **all = NULL;
        int r = fs_list(c->fd, "tmp", &all, NULL);
        if (r < 0)
                return r;
        size_t n = 0;
        for (char **nm = all; *nm; nm++) {
                char k[CACHE_KEY_LEN + 1];
                if (only_key && !(tmp_name_key(*nm, k) && streq(k, only_key)))
                        free(*nm);
                else
                        all[n++] = *nm;
        }
        all[n] = NULL;
        *ret = all;
        *ret_n = n;
        return 0;
}

static int rm_rf_tmp(struct cache *c, const char *name) {
        _cleanup_close_ int fd = openat(c->fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return rm_rf_at(fd, name);
}

/* Removes tmp/ leftovers whose writer is gone. With held_key (whose lock
 * the caller holds), only that key's; otherwise every key's whose lock is
 * free (LOCK_NB: a busy lock means a live writer, whose dir stays). Names
 * that belong to no key are not kiln's work in progress and are removed. */
static int clean_tmp(struct cache *c, const char *held_key) {
        char **names = NULL;
        size_t n = 0;
        int r = tmp_names(c, held_key, &names, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                char key[CACHE_KEY_LEN + 1];
                int k, fd = -1;
                if (!held_key && tmp_name_key(names[i], key)) {
                        fd = lock_key(c, key, false);
                        if (fd == -EAGAIN)
                                continue;
                        if (fd < 0) {
                                r = r ?: fd;
                                continue;
                        }
                }
                k = rm_rf_tmp(c, names[i]);
                if (k < 0 && r == 0)
                        r = k;
                if (fd >= 0)
                        unlock_key(c, key, fd, !entry_exists(c, key));
        }
        fs_names_free(names);
        return r;
}

/* ---- open, close, paths ------------------------------------------------------------------ */

int cache_open(const char *dir, struct cache **ret) {
        if (!dir || !dir[0] || !ret)
                return -EINVAL;
        int r = mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        _cleanup_free_ char *abs = realpath(dir, NULL);
        if (!abs)
                return -errno;
        _cleanup_close_ int fd = open(abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        /* entries/ holds every layer, secret files included: only its owner
         * may look in (also in a cache made by an older kiln). tmp/ stays
         * 0755: mmdebstrap's _apt must reach a tree being bootstrapped. */
        static const struct {
                const char *name;
                mode_t mode;
        } subdirs[] = {{"entries", 0700}, {"tmp", 0755}, {"locks", 0755}, {"index", 0755}};
        for (size_t i = 0; i < ARRAY_SIZE(subdirs); i++) {
                if (mkdirat(fd, subdirs[i].name, subdirs[i].mode) < 0 && errno != EEXIST)
                        return -errno;
                struct stat st;
                if (fstatat(fd, subdirs[i].name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if ((st.st_mode & 07777) != subdirs[i].mode &&
                    fchmodat(fd, subdirs[i].name, subdirs[i].mode, 0) < 0)
                        return -errno;
        }
        struct cache *c = xcalloc(1, sizeof(*c));
        c->dir = TAKE_PTR(abs);
        c->fd = take_fd(&fd);
        /* Best effort: a leftover that cannot be removed now is retried by the
         * next open and never read. */
        (void)clean_tmp(c, NULL);
        *ret = c;
        return 0;
}

struct cache *cache_close(struct cache *c) {
        if (!c)
                return NULL;
        if (c->fd >= 0)
                close(c->fd);
        free(c->dir);
        free(c);
        return NULL;
}

const char *cache_dir(const struct cache *c) { return c->dir; }

/* NULL for an invalid key (no path is ever built from one). */
char *cache_entry_tree(const struct cache *c, const char *key) {
        if (!key_valid(key))
                return NULL;
        return xasprintf("%s/entries/%s/tree", c->dir, key);
}

bool cache_has(struct cache *c, const char *key) {
        if (!key_valid(key) || !entry_exists(c, key))
                return false;
        char used[sizeof("entries/") + CACHE_KEY_LEN + sizeof("/used")];
        snprintf(used, sizeof(used), "entries/%s/used", key);
        if (utimensat(c->fd, used, NULL, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
                int fd = openat(c->fd, used, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
                if (fd >= 0)
                        close(fd);
        }
        return true;
}

int cache_read_meta(struct cache *c, const char *key, char **ret_json) {
        if (!key_valid(key))
                return -EINVAL;
        _cleanup_free_ char *path = xasprintf("%s/entries/%s/meta.json", c->dir, key);
        return read_file(path, META_FILE_MAX, ret_json, NULL);
}

/* ---- transactions ------------------------------------------------------------------------ */

static struct cache_txn *txn_free(struct cache_txn *t) {
        if (!t)
                return NULL;
        free(t->name);
        free(t->dir);
        free(t->tree);
        free(t);
        return NULL;
}

int cache_begin(struct cache *c, const char *key, struct cache_txn **ret) {
        if (!key_valid(key) || !ret)
                return -EINVAL;
        /* Published entries are immutable: no need to queue for the lock. */
        if (entry_exists(c, key)) {
                *ret = NULL;
                return 1;
        }
        int lock = lock_key(c, key, true);
        if (lock < 0)
                return lock;
        if (entry_exists(c, key)) {
                unlock_key(c, key, lock, false);
                *ret = NULL;
                return 1;
        }
        /* We hold the key: any tmp dir of it is a dead writer's. Best effort,
         * as in cache_open: a leftover that resists must not block the key. */
        (void)clean_tmp(c, key);
        int r;
        _cleanup_free_ char *dir = xasprintf("%s/tmp/%s.XXXXXX", c->dir, key);
        if (!mkdtemp(dir)) {
                r = -errno;
                unlock_key(c, key, lock, true);
                return r;
        }
        _cleanup_free_ char *tree = xasprintf("%s/tree", dir);
        /* mkdtemp made the entry dir 0700, and so it stays: the layer may
         * hold secret files (a bootstrap that needs it open says so:
         * cache_txn_share). The layer root's mode becomes the image's /
         * (overlay takes it from the upper layer), so 0755. */
        if (mkdir(tree, 0755) < 0 || chmod(tree, 0755) < 0) {
                r = -errno;
                (void)rm_rf(dir);
                unlock_key(c, key, lock, true);
                return r;
        }
        struct cache_txn *t = xcalloc(1, sizeof(*t));
        t->cache = c;
        memcpy(t->key, key, sizeof(t->key));
        t->lock_fd = lock;
        t->name = xstrdup(strrchr(dir, '/') + 1);
        t->dir = TAKE_PTR(dir);
        t->tree = TAKE_PTR(tree);
        *ret = t;
        return 0;
}

int cache_txn_share(struct cache_txn *t) { return chmod(t->dir, 0755) < 0 ? -errno : 0; }

const char *cache_txn_tree(const struct cache_txn *t) { return t->tree; }
const char *cache_txn_dir(const struct cache_txn *t) { return t->dir; }

/* Leaves only tree/ in the tmp dir (overlay work/, mount points, ...). */
static int txn_tidy(int xfd) {
        char **names = NULL;
        int r = fs_list(xfd, NULL, &names, NULL);
        if (r < 0)
                return r;
        for (char **nm = names; *nm; nm++) {
                int k = streq(*nm, "tree") ? 0 : rm_rf_at(xfd, *nm);
                if (k < 0 && r == 0)
                        r = k;
        }
        fs_names_free(names);
        return r;
}

static int txn_publish(struct cache_txn *t, const char *meta_json) {
        struct cache *c = t->cache;
        size_t mlen = strlen(meta_json);
        if (mlen > META_JSON_MAX)
                return -E2BIG;
        if (json_validate(meta_json, mlen, &meta_opts, NULL) < 0)
                return -EINVAL;

        _cleanup_free_ char *rel = xasprintf("tmp/%s", t->name);
        _cleanup_close_ int xfd = openat(c->fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (xfd < 0)
                return -errno;
        int r = txn_tidy(xfd);
        if (r < 0)
                return r;
        uint64_t size = 0;
        if ((r = fs_tree_size_at(xfd, "tree", &size)) < 0)
                return r;

        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &sb, false);
        json_begin_object(&w);
        json_key(&w, "format");
        json_int(&w, 1);
        json_key(&w, "key");
        json_string(&w, t->key);
        json_key(&w, "created");
        json_int(&w, (int64_t)time(NULL));
        json_key(&w, "size");
        json_int(&w, (int64_t)size);
        json_key(&w, "meta");
        json_raw(&w, meta_json);
        json_end_object(&w);
        strbuf_addc(&sb, '\n');

        if ((r = write_file_at(xfd, "meta.json", sb.buf, sb.len)) < 0 ||
            (r = write_file_at(xfd, "used", "", 0)) < 0)
                return r;
        if (syncfs(xfd) < 0 || fsync(xfd) < 0)
                return -errno;

        char dst[sizeof("entries/") + CACHE_KEY_LEN];
        snprintf(dst, sizeof(dst), "entries/%s", t->key);
        /* NOREPLACE only guards against a writer that ignored the lock; file
         * systems without it (EINVAL) get a plain rename, which still refuses
         * to replace a non-empty entry. */
        if (renameat2(c->fd, rel, c->fd, dst, RENAME_NOREPLACE) < 0 &&
            (errno != EINVAL || renameat(c->fd, rel, c->fd, dst) < 0))
                return -errno;
        return fs_fsync_dir_at(c->fd, "entries");
}

/* Always consumes t: on failure the tmp dir is discarded as by cache_abort. */
int cache_commit(struct cache_txn *t, const char *meta_json) {
        if (!t)
                return -EINVAL;
        int r = txn_publish(t, meta_json ? meta_json : "null");
        if (r < 0) {
                cache_abort(t);
                return r;
        }
        unlock_key(t->cache, t->key, t->lock_fd, false);
        txn_free(t);
        return 0;
}

void cache_abort(struct cache_txn *t) {
        if (!t)
                return;
        (void)rm_rf_tmp(t->cache, t->name);
        unlock_key(t->cache, t->key, t->lock_fd, !entry_exists(t->cache, t->key));
        txn_free(t);
}

/* ---- index ------------------------------------------------------------------------------- */

int cache_index_set(struct cache *c, const char *build, unsigned step, const char *key) {
        if (!build_name_valid(build) || !key_valid(key))
                return -EINVAL;
        _cleanup_free_ char *bdir = xasprintf("index/%s", build);
        if (mkdirat(c->fd, bdir, 0755) < 0 && errno != EEXIST)
                return -errno;
        _cleanup_free_ char *tmp = xasprintf("%s/%s/.%u.XXXXXX", c->dir, bdir, step);
        int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        char line[CACHE_KEY_LEN + 2];
        snprintf(line, sizeof(line), "%s\n", key);
        int r = write_all(fd, line, CACHE_KEY_LEN + 1);
        if (fchmod(fd, 0644) < 0 && r == 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        _cleanup_free_ char *dst = xasprintf("%s/%s/%u", c->dir, bdir, step);
        if (r == 0 && rename(tmp, dst) < 0)
                r = -errno;
        if (r < 0)
                (void)unlink(tmp);
        return r;
}

int cache_index_get(struct cache *c, const char *build, unsigned step, char ret_key[CACHE_KEY_LEN + 1]) {
        if (!build_name_valid(build))
                return -EINVAL;
        _cleanup_free_ char *path = xasprintf("%s/index/%s/%u", c->dir, build, step);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = read_file(path, INDEX_FILE_MAX, &buf, &len);
        if (r < 0)
                return r == -E2BIG ? -EBADMSG : r;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
                buf[--len] = 0;
        if (!key_valid(buf))
                return -EBADMSG;
        memcpy(ret_key, buf, CACHE_KEY_LEN + 1);
        return 0;
}

/* ---- listing, removal, pruning ----------------------------------------------------------- */

struct listed {
        struct cache_entry_info info;
        struct timespec used; /* full precision, for ordering */
};

/* Fills e from entries/<key> (e->info.key set). -ENOENT when it vanished. */
static int entry_info(struct cache *c, struct listed *e) {
        const char *key = e->info.key;
        char rel[sizeof("entries/") + CACHE_KEY_LEN + sizeof("/meta.json")];
        struct stat st;
        snprintf(rel, sizeof(rel), "entries/%s", key);
        if (fstatat(c->fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        e->info.created = st.st_mtim.tv_sec; /* fallbacks, if meta.json is unreadable */
        e->used = st.st_mtim;
        uint64_t extra = (uint64_t)st.st_blocks * 512; /* the entry directory itself */

        snprintf(rel, sizeof(rel), "entries/%s/used", key);
        if (fstatat(c->fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0)
                e->used = st.st_mtim;
        e->info.last_used = e->used.tv_sec;

        snprintf(rel, sizeof(rel), "entries/%s/meta.json", key);
        _cleanup_free_ char *path = xasprintf("%s/%s", c->dir, rel);
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        bool have_size = false;
        if (fstatat(c->fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            read_file(path, META_FILE_MAX, &text, &len) == 0) {
                extra += (uint64_t)st.st_blocks * 512;
                struct json_value *doc = NULL;
                uint64_t v;
                if (json_parse(text, len, &wrapper_opts, &doc, NULL) == 0) {
                        if (json_u64(json_get(doc, "created"), &v) == 0 && v <= INT64_MAX)
                                e->info.created = (time_t)v;
                        if (json_u64(json_get(doc, "size"), &v) == 0) {
                                e->info.size = v;
                                have_size = true;
                        }
                        e->info.label = xstrdup_null(json_str(json_get(json_get(doc, "meta"), "label")));
                        json_value_free(doc);
                }
        }
        if (!have_size) {
                snprintf(rel, sizeof(rel), "entries/%s", key);
                int r = fs_tree_size_at(c->fd, rel, &e->info.size);
                if (r < 0)
                        return r;
                extra = 0; /* the walk counted everything */
        }
        e->info.size += extra;
        return 0;
}

static int listed_cmp(const void *a, const void *b) {
        const struct listed *x = a, *y = b;
        if (x->used.tv_sec != y->used.tv_sec)
                return x->used.tv_sec > y->used.tv_sec ? -1 : 1;
        if (x->used.tv_nsec != y->used.tv_nsec)
                return x->used.tv_nsec > y->used.tv_nsec ? -1 : 1;
        return strcmp(x->info.key, y->info.key);
}

/* Every entry, most recently used first. An entry whose details cannot all
 * be read is listed with what could be (a cache listing should not fail
 * because of one odd entry); the error is returned only when nothing was. */
static int list_entries(struct cache *c, struct listed **ret, size_t *ret_n) {
        int fd = openat(c->fd, "entries", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        struct listed *v = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        int r = 0;
        while ((de = readdir(d))) {
                if (!key_valid(de->d_name))
                        continue;
                GROW(v, n, cap);
                struct listed *e = &v[n];
                *e = (struct listed){0};
                memcpy(e->info.key, de->d_name, CACHE_KEY_LEN + 1);
                int k = entry_info(c, e);
                if (k == -ENOENT) { /* removed meanwhile */
                        free(e->info.label);
                        continue;
                }
                if (k < 0 && r == 0)
                        r = k;
                n++;
        }
        if (n > 0)
                qsort(v, n, sizeof(*v), listed_cmp);
        *ret = v;
        *ret_n = n;
        return r < 0 && n == 0 ? r : 0;
}

static void listed_free(struct listed *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i].info.label);
        free(v);
}

int cache_entry_created(struct cache *c, const char *key, time_t *ret) {
        if (strlen(key) != CACHE_KEY_LEN)
                return -EINVAL;
        struct listed e = {0};
        memcpy(e.info.key, key, CACHE_KEY_LEN + 1);
        int r = entry_info(c, &e);
        if (r >= 0)
                *ret = e.info.created;
        free(e.info.label);
        return r < 0 ? r : 0;
}

int cache_list(struct cache *c, struct cache_entry_info **ret, size_t *ret_n) {
        struct listed *v = NULL;
        size_t n = 0;
        int r = list_entries(c, &v, &n);
        if (r < 0)
                return r;
        struct cache_entry_info *out = xcalloc(n ? n : 1, sizeof(*out));
        for (size_t i = 0; i < n; i++)
                out[i] = v[i].info; /* the label moves */
        free(v);
        *ret = out;
        *ret_n = n;
        return 0;
}

void cache_entry_info_free(struct cache_entry_info *v, size_t n) {
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i].label);
        free(v);
}

/* With the key's lock held: makes entries/<key> disappear at once (renamed
 * over a fresh, empty tmp dir of the key), then deletes it. 0 when absent. */
static int remove_locked(struct cache *c, const char *key) {
        if (!entry_exists(c, key))
                return 0;
        _cleanup_free_ char *grave = xasprintf("%s/tmp/%s.XXXXXX", c->dir, key);
        if (!mkdtemp(grave))
                return -errno;
        char src[sizeof("entries/") + CACHE_KEY_LEN];
        snprintf(src, sizeof(src), "entries/%s", key);
        /* rename(2) may replace an empty directory, atomically. */
        if (renameat(c->fd, src, AT_FDCWD, grave) < 0) {
                int r = errno == ENOENT ? 0 : -errno;
                (void)rmdir(grave);
                return r;
        }
        /* A leftover from a failed removal is still a dead key's tmp dir:
         * the next cache_open or cache_begin of the key removes it. */
        return rm_rf(grave);
}

int cache_remove(struct cache *c, const char *key) {
        if (!key_valid(key))
                return -EINVAL;
        int lock = lock_key(c, key, true);
        if (lock < 0)
                return lock;
        int r = remove_locked(c, key);
        unlock_key(c, key, lock, !entry_exists(c, key));
        return r;
}

/* One thing prune may remove: a step entry (pkg NULL) or a package file. */
struct prunable {
        struct listed *entry;
        struct pkgcache_file *pkg;
        struct timespec used;
        uint64_t size;
};

static int prunable_cmp(const void *a, const void *b) {
        const struct prunable *x = a, *y = b;
        if (x->used.tv_sec != y->used.tv_sec)
                return x->used.tv_sec > y->used.tv_sec ? -1 : 1;
        if (x->used.tv_nsec != y->used.tv_nsec)
                return x->used.tv_nsec > y->used.tv_nsec ? -1 : 1;
        return 0;
}

/* Removes one step entry unless it is locked or was used since it was
 * listed; 1 when removed, 0 when kept, -errno. */
static int prune_entry(struct cache *c, const struct listed *e) {
        const char *key = e->info.key;
        int lock = lock_key(c, key, false);
        if (lock == -EAGAIN)
                return 0; /* a running build holds it */
        if (lock < 0)
                return lock;
        /* Used since we listed it? Then it is no longer the oldest. */
        struct listed now = {0};
        memcpy(now.info.key, key, CACHE_KEY_LEN + 1);
        int k = entry_info(c, &now);
        free(now.info.label);
        if (k == 0 && listed_cmp(&now, e) < 0) {
                unlock_key(c, key, lock, false);
                return 0;
        }
        if (k == 0)
                k = remove_locked(c, key);
        unlock_key(c, key, lock, !entry_exists(c, key));
        if (k == -ENOENT)
                return 0;
        return k < 0 ? k : 1;
}

char *cache_packages_dir(const struct cache *c) { return xasprintf("%s/packages", c->dir); }

int cache_prune_all(struct cache *c, uint64_t max_bytes, struct cache_prune_result *ret) {
        struct listed *v = NULL;
        size_t n = 0;
        int r = list_entries(c, &v, &n);
        if (r < 0)
                return r;
        _cleanup_free_ char *pdir = cache_packages_dir(c);
        struct pkgcache_file *pv = NULL;
        size_t pn = 0;
        if ((r = pkgcache_list(pdir, &pv, &pn)) < 0) {
                listed_free(v, n);
                return r;
        }
        struct prunable *all = xcalloc(n + pn + 1, sizeof(*all));
        uint64_t total = 0;
        for (size_t i = 0; i < n; i++) {
                all[i] = (struct prunable){.entry = &v[i], .used = v[i].used, .size = v[i].info.size};
                total += v[i].info.size;
        }
        for (size_t i = 0; i < pn; i++) {
                all[n + i] = (struct prunable){.pkg = &pv[i], .used = pv[i].used, .size = pv[i].size};
                total += pv[i].size;
        }
        if (n + pn > 0)
                qsort(all, n + pn, sizeof(*all), prunable_cmp);
        struct cache_prune_result res = {0};
        for (size_t i = n + pn; i-- > 0 && total > max_bytes;) {
                int k = all[i].entry ? prune_entry(c, all[i].entry) : pkgcache_remove(pdir, all[i].pkg->hex);
                if (k < 0) {
                        r = r ?: k;
                        continue;
                }
                if (all[i].entry && k == 0)
                        continue;
                total -= all[i].size;
                res.freed += all[i].size;
                if (all[i].entry)
                        res.removed++;
                else
                        res.removed_packages++;
        }
        free(all);
        free(pv);
        listed_free(v, n);
        if (ret)
                *ret = res;
        return r;
}

int cache_prune(struct cache *c, uint64_t max_bytes, uint64_t *ret_freed, size_t *ret_removed) {
        struct cache_prune_result res = {0};
        int r = cache_prune_all(c, max_bytes, &res);
        if (ret_freed)
                *ret_freed = res.freed;
        if (ret_removed)
                *ret_removed = res.removed;
        return r;
}
