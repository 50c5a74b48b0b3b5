/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs.c — file-system helpers (see fs.h). One recursive walker serves both
 * removal and size counting, so the guards (no symlink followed, no mount
 * point crossed, a directory checked to be what lstat saw) are written
 * once.
 */
#include "os/fs.h"

#include "base/util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>

static inline void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}
#define _cleanup_closedir_ _cleanup_(closedirp)

static bool dot_or_dotdot(const char *s) {
        return s[0] == '.' && (s[1] == 0 || (s[1] == '.' && s[2] == 0));
}

/* ---- one walker for removal and size ------------------------------------ */

/* It never follows symlinks (O_NOFOLLOW, fstatat with AT_SYMLINK_NOFOLLOW),
 * never leaves the file system it started on, and holds one descriptor per
 * level (so depth is bounded by RLIMIT_NOFILE: -EMFILE beyond it). */
enum walk_op { WALK_SIZE, WALK_REMOVE };

struct linked {
        ino_t ino;
        uint64_t bytes;
};

struct walk {
        enum walk_op op;
        dev_t dev;
        int err;         /* first error; ENOENT never counts (races with other removers) */
        uint64_t bytes;  /* WALK_SIZE: singly linked inodes */
        struct linked *links; /* WALK_SIZE: inodes with st_nlink > 1, summed once at the end */
        size_t nlinks, caplinks;
        size_t removed;  /* WALK_REMOVE: names removed */
};

static void walk_error(struct walk *w, int r) {
        if (r < 0 && r != -ENOENT && w->err == 0)
                w->err = r;
}

static void walk_count(struct walk *w, const struct stat *st) {
        uint64_t b = (uint64_t)st->st_blocks * 512;
        if (S_ISDIR(st->st_mode) || st->st_nlink <= 1) {
                w->bytes += b;
                return;
        }
        GROW(w->links, w->nlinks, w->caplinks);
        w->links[w->nlinks++] = (struct linked){st->st_ino, b};
}

static int linked_cmp(const void *a, const void *b) {
        ino_t x = ((const struct linked *)a)->ino, y = ((const struct linked *)b)->ino;
        return x < y ? -1 : x > y;
}

/* Opens directory name (lstat'ed as st) for walking. For removal, a
 * directory that denies its owner access (overlay's work/work is mode 000)
 * gets u+rwx first: without r it cannot be listed, without wx its entries
 * cannot be unlinked. */
static int walk_open_dir(int dfd, const char *name, const struct stat *st, bool fix_mode) {
        int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
        int fd = openat(dfd, name, flags);
        if (fd < 0 && errno == EACCES && fix_mode) {
                if (fchmodat(dfd, name, (st->st_mode & 07777) | 0700, AT_SYMLINK_NOFOLLOW) < 0)
                        return -EACCES;
                fd = openat(dfd, name, flags);
        }
        if (fd < 0)
                return -errno;
        struct stat now;
        if (fstat(fd, &now) < 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino) {
                close(fd); /* replaced between lstat and open: someone else's business now */
                return -ENOENT;
        }
        if (fix_mode && (now.st_mode & 0700) != 0700)
                (void)fchmod(fd, (now.st_mode & 07777) | 0700);
        return fd;
}

static void walk_entry(struct walk *w, int dfd, const char *name);

/* Walks the directory open at dfd (consumed). */
static void walk_dir(struct walk *w, int dfd) {
        _cleanup_closedir_ DIR *d = fdopendir(dfd);
        if (!d) {
                walk_error(w, -errno);
                close(dfd);
                return;
        }
        /* Unlinking while reading may make a file system skip names, so a
         * removal reads the directory again until a pass finds nothing (or
         * removes nothing: what is left then is an error already recorded). */
        for (;;) {
                size_t seen = 0, removed = w->removed;
                struct dirent *de;
                errno = 0;
                while ((de = readdir(d))) {
                        if (!dot_or_dotdot(de->d_name)) {
                                seen++;
                                walk_entry(w, dirfd(d), de->d_name);
                        }
                        errno = 0;
                }
                if (errno) {
                        walk_error(w, -errno);
                        return;
                }
                if (w->op != WALK_REMOVE || seen == 0 || w->removed == removed)
                        return;
                rewinddir(d);
        }
}

/* Counts or removes name (relative to dfd) and, for a directory, all below. */
static void walk_entry(struct walk *w, int dfd, const char *name) {
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return walk_error(w, -errno);
        bool dir = S_ISDIR(st.st_mode);
        if (dir && st.st_dev != w->dev) {
                /* A mount point: never descend. Removal cannot finish. */
                if (w->op == WALK_REMOVE)
                        walk_error(w, -EXDEV);
                return;
        }
        if (w->op == WALK_SIZE)
                walk_count(w, &st);
        if (dir) {
                int fd = walk_open_dir(dfd, name, &st, w->op == WALK_REMOVE);
                if (fd < 0)
                        return walk_error(w, fd);
                walk_dir(w, fd);
        }
        if (w->op == WALK_REMOVE) {
                /* Whiteouts (char 0:0), fifos, sockets, devices and symlinks are
                 * all just names here: unlinkat never opens or follows them. */
                if (unlinkat(dfd, name, dir ? AT_REMOVEDIR : 0) < 0)
                        return walk_error(w, -errno);
                w->removed++;
        }
}

/* The last component of path, without trailing slashes, is "." or "..". */
static bool ends_in_dot(const char *path) {
        size_t n = strlen(path);
        while (n > 1 && path[n - 1] == '/')
                n--;
        size_t b = n;
        while (b > 0 && path[b - 1] != '/')
                b--;
        return (n - b == 1 && path[b] == '.') || (n - b == 2 && path[b] == '.' && path[b + 1] == '.');
}

int rm_rf_at(int dfd, const char *name) {
        struct stat st, root;
        if (!name || !name[0])
                return -EINVAL;
        if (ends_in_dot(name))
                return -EINVAL; /* rm refuses them too: "." would empty the cwd */
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (stat("/", &root) < 0)
                return -errno;
        if (st.st_dev == root.st_dev && st.st_ino == root.st_ino)
                return -EPERM;
        struct walk w = {.op = WALK_REMOVE, .dev = st.st_dev};
        walk_entry(&w, dfd, name);
        return w.err;
}

int rm_rf(const char *path) {
        return rm_rf_at(AT_FDCWD, path);
}

int fs_tree_size_at(int dfd, const char *name, uint64_t *ret) {
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        struct walk w = {.op = WALK_SIZE, .dev = st.st_dev};
        walk_entry(&w, dfd, name);
        if (w.nlinks > 0) {
                qsort(w.links, w.nlinks, sizeof(*w.links), linked_cmp);
                for (size_t i = 0; i < w.nlinks; i++)
                        if (i == 0 || w.links[i].ino != w.links[i - 1].ino)
                                w.bytes += w.links[i].bytes;
        }
        free(w.links);
        if (w.err < 0)
                return w.err;
        *ret = w.bytes;
        return 0;
}

int fs_fsync_dir_at(int dfd, const char *name) {
        _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return fsync(fd) < 0 ? -errno : 0;
}

/* ---- sparse files ------------------------------------------------------ */

int pwrite_all(int fd, const void *buf, size_t n, uint64_t off) {
        const uint8_t *p = buf;
        while (n > 0) {
                if (off > (uint64_t)INT64_MAX)
                        return -EFBIG;
                ssize_t w = pwrite(fd, p, n, (off_t)off);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return -errno;
                if (w == 0)
                        return -EIO;
                p += w;
                n -= (size_t)w;
                off += (uint64_t)w;
        }
        return 0;
}

int pread_all(int fd, void *buf, size_t n, uint64_t off) {
        uint8_t *p = buf;
        while (n > 0) {
                ssize_t r = pread(fd, p, n, (off_t)off);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -EIO; /* short file */
                p += r;
                n -= (size_t)r;
                off += (uint64_t)r;
        }
        return 0;
}


int fs_next_data(int fd, uint64_t off, uint64_t size, uint64_t *ret_start, uint64_t *ret_end) {
        if (off >= size) {
                *ret_start = *ret_end = size;
                return 0;
        }
        off_t ds = lseek(fd, (off_t)off, SEEK_DATA);
        if (ds < 0) {
                if (errno == ENXIO) { /* only a hole (or EOF) from off on */
                        *ret_start = *ret_end = size;
                        return 0;
                }
                if (errno != EINVAL)
                        return -errno;
                /* No SEEK_DATA here: everything is data. */
                *ret_start = off;
                *ret_end = size;
                return 0;
        }
        if ((uint64_t)ds >= size) {
                *ret_start = *ret_end = size;
                return 0;
        }
        off_t de = lseek(fd, ds, SEEK_HOLE);
        if (de < 0)
                return -errno;
        *ret_start = (uint64_t)ds;
        *ret_end = (uint64_t)de < size ? (uint64_t)de : size;
        return 0;
}

#define COPY_CHUNK (1u << 20)

int fs_copy_sparse(int src, int dst, uint64_t dst_off) {
        struct stat st;
        if (fstat(src, &st) < 0)
                return -errno;
        uint64_t size = (uint64_t)st.st_size, pos = 0, start, end;
        _cleanup_free_ uint8_t *buf = xmalloc(COPY_CHUNK);
        for (;;) {
                int r = fs_next_data(src, pos, size, &start, &end);
                if (r < 0)
                        return r;
                if (start >= size)
                        return 0;
                for (pos = start; pos < end;) {
                        size_t want = end - pos < COPY_CHUNK ? (size_t)(end - pos) : COPY_CHUNK;
                        r = pread_all(src, buf, want, pos);
                        if (r < 0)
                                return r;
                        r = pwrite_all(dst, buf, want, dst_off + pos);
                        if (r < 0)
                                return r;
                        pos += want;
                }
        }
}

/* ---- listing ----------------------------------------------------------- */

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

void fs_names_free(char **names) {
        for (char **n = names; n && *n; n++)
                free(*n);
        free(names);
}

int fs_list(int dfd, const char *path, char ***ret, size_t *ret_n) {
        int fd = openat(dfd, path && path[0] ? path : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d) {
                int r = -errno;
                close(fd);
                return r;
        }
        char **v = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        errno = 0;
        while ((de = readdir(d))) {
                if (!dot_or_dotdot(de->d_name)) {
                        GROW(v, n + 1, cap);
                        v[n++] = xstrdup(de->d_name);
                }
                errno = 0;
        }
        if (errno) {
                int r = -errno;
                if (v)
                        v[n] = NULL;
                fs_names_free(v);
                return r;
        }
        GROW(v, n, cap);
        v[n] = NULL;
        qsort(v, n, sizeof(*v), name_cmp);
        *ret = v;
        if (ret_n)
                *ret_n = n;
        return 0;
}
