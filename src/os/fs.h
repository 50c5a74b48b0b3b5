/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs.h — file-system helpers that several engines need: recursive removal
 * with guards, the size of a tree on disk, sparse copies, sorted listings.
 * (Creating directories and reading or writing whole files stay in
 * base/util.h.)
 *
 * Every walk here is careful with trees it does not trust (an image tree,
 * a cache layer, a scratch dir another process may touch): it never
 * follows a symbolic link (each directory is opened with O_NOFOLLOW and
 * checked to be what lstat saw), never crosses into another file system (a
 * mount point below the top is left alone), and holds one descriptor per
 * level, so depth is bounded by RLIMIT_NOFILE (-EMFILE beyond it).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Removes path and, for a directory, everything below it, like rm -rf with
 * guards: refuses "" and NULL (-EINVAL), a path whose last component is
 * "." or ".." (-EINVAL), and the root directory however it is spelled
 * (-EPERM). A symlink is removed, never followed; a mount point below path
 * is not entered and makes the removal fail with -EXDEV (what is on the
 * same file system is removed). Directories without owner access (an
 * overlay's work/work, mode 000) are opened up first; overlay whiteouts,
 * devices, fifos and sockets are just names. 0 also when path does not
 * exist; otherwise the first error (-errno), having removed what it could. */
int rm_rf(const char *path);

/* rm_rf of name relative to the directory open at dfd (AT_FDCWD: cwd). */
int rm_rf_at(int dfd, const char *name);

/* Bytes on disk of the tree at name (relative to dfd): st_blocks × 512 of
 * every entry, a hard-linked inode counted once, no symlink followed, no
 * mount point entered. 0 or -errno. */
int fs_tree_size_at(int dfd, const char *name, uint64_t *ret);

/* fsync of the directory name (relative to dfd): makes the entries
 * created or renamed in it durable. 0 or -errno. */
int fs_fsync_dir_at(int dfd, const char *name);

/* pread / pwrite of exactly n bytes at off, retrying short transfers and
 * EINTR: 0, -EIO when the file ends first (pread) or nothing can be
 * written (pwrite), -EFBIG for an offset beyond off_t, or -errno. */
int pread_all(int fd, void *buf, size_t n, uint64_t off);
int pwrite_all(int fd, const void *buf, size_t n, uint64_t off);

/* The next data extent of fd at or after off, within size: [*ret_start,
 * *ret_end). Both are size when only a hole (or nothing) is left; where the
 * file system cannot tell holes (no SEEK_DATA), everything from off is
 * data. 0 or -errno. */
int fs_next_data(int fd, uint64_t off, uint64_t size, uint64_t *ret_start, uint64_t *ret_end);

/* Copies the data extents of src (all of its size) into dst at dst_off;
 * holes are skipped, so they stay holes in a dst that was sparse there.
 * dst is not resized. 0 or -errno. */
int fs_copy_sparse(int src, int dst, uint64_t dst_off);

/* The names in the directory path (relative to dfd, AT_FDCWD: cwd; "" or
 * NULL: dfd itself), without "." and "..", sorted by strcmp (byte order,
 * whatever the locale). *ret is NULL-terminated and owned by the caller
 * (fs_names_free); *ret_n (may be NULL) is the count. 0 or -errno. */
int fs_list(int dfd, const char *path, char ***ret, size_t *ret_n);
void fs_names_free(char **names);
