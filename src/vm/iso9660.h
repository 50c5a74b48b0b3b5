/* SPDX-License-Identifier: Apache-2.0 */
/*
 * iso9660.h — kiln's ISO 9660 (ECMA-119) image writer, for cloud-init seed
 * ISOs (cidata.h) and Packer-style `cd_files` ISOs.
 *
 * What is written, in this order of 2048-byte sectors:
 *
 *   0-15   system area (zeros)
 *   16     primary volume descriptor (ECMA-119 8.4)
 *   17     Joliet supplementary volume descriptor (UCS-2 level 3, "%/E")
 *   18     volume descriptor set terminator
 *   ...    ER continuation area (one sector, Rock Ridge identification)
 *   ...    L and M path tables of the primary tree, then of the Joliet tree
 *   ...    directory extents of the primary tree, then of the Joliet tree
 *   ...    file contents, in the order the files were given
 *   ...    ISO9660_PAD_SECTORS of zeros (counted in the volume size), as
 *          mkisofs -pad does: Linux reads ahead past the last file on
 *          CD-ROM devices and logs I/O errors when that is past the end,
 *          and libisoburn (xorriso) takes images of 32 sectors or less
 *          for empty media
 *
 * Three name spaces describe the same files, so every reader sees the
 * original names:
 *   - primary (ISO 9660 level 1): upper-case 8.3 d-character names made
 *     unique per directory ("user-data" → "USER_DAT.;1" or similar); for
 *     readers that know nothing else;
 *   - Rock Ridge (SUSP 1.10 + RRIP 1.10, "RRIP_1991A"): SP and ER in the root,
 *     and PX (mode, links, uid/gid 0), TF (modify/access/attribute times) and
 *     NM (the original name) on every record of the primary tree; Linux
 *     mounts use this;
 *   - Joliet: the original names in UCS-2, without ";1" versions.
 *
 * Supported: regular files up to ISO9660_FILE_SIZE_MAX bytes each (one
 * extent: no multi-extent files), subdirectories (made implicitly from
 * paths, or explicitly for empty ones), names of 1..ISO9660_NAME_MAX
 * characters of UTF-8 in the Basic Multilingual Plane except '/', ';', '\\',
 * ':', '*', '?' and control characters, paths of up to ISO9660_PATH_MAX
 * bytes and ISO9660_DEPTH_MAX directory levels (ECMA-119's 8, root
 * included), up to ISO9660_FILES_MAX entries. Not supported: symbolic links,
 * device files, hard links, El Torito boot records, multi-session, files of
 * 4 GiB or more.
 *
 * Reproducibility: the output depends only on the entries (their paths,
 * contents and modes), the volume id and the timestamp: every date in the
 * image is `timestamp` (callers pass SOURCE_DATE_EPOCH when it is set), uid
 * and gid are 0, directory order is the sorted order ECMA-119 requires. The
 * same inputs give the same bytes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ISO9660_SECTOR 2048u
#define ISO9660_NAME_MAX 64                 /* characters per path component (Joliet's limit) */
#define ISO9660_PATH_MAX 255                /* bytes per path (ECMA-119 6.8.2.1) */
#define ISO9660_DEPTH_MAX 8                 /* directory levels, root included */
#define ISO9660_FILES_MAX 65535             /* entries (files and directories) */
#define ISO9660_VOLID_MAX 16                /* characters: Joliet holds 16, the PVD 32 */
#define ISO9660_FILE_SIZE_MAX 0xFFFFF800ull /* largest single-extent file, < 4 GiB */
#define ISO9660_PAD_SECTORS 150             /* zeros at the end (300 KiB) */

struct iso9660_entry {
        /* Path inside the ISO: components separated by '/', no leading or
         * trailing '/', no empty, "." or ".." components. Parent directories
         * are created as needed. */
        const char *path;
        /* Contents, exactly one of: data (data_len bytes, may be empty with
         * data == NULL and source == NULL) or source, a host file streamed at
         * write time (its size is taken when the write starts; a file that
         * shrinks or grows meanwhile fails the write with -EIO). */
        const void *data;
        size_t data_len;
        const char *source;
        /* Permission bits for Rock Ridge (0: 0644 for files, 0755 for
         * directories). */
        unsigned mode;
        /* An (empty) directory rather than a file: data and source unused. */
        bool directory;
};

struct iso9660_options {
        /* Volume identifier, 1..ISO9660_VOLID_MAX printable ASCII characters
         * except '/', recorded as given (case kept: cloud-init looks for
         * "cidata") in the primary and the Joliet descriptor. */
        const char *volume_id;
        /* Every date recorded in the image (seconds since the epoch, UTC);
         * years 1970..2155. */
        time_t timestamp;
};

/* Writes the image to fd from its current position, sequentially (fd may be
 * a pipe). Entries are borrowed. Returns the image size in bytes (a multiple
 * of ISO9660_SECTOR), or:
 *   -EINVAL  a malformed path or name, a bad volume id or timestamp
 *   -EEXIST  two entries with the same path, or a file used as a directory
 *   -E2BIG   over a limit above (name, path, depth, entries, file size)
 *   -errno   opening/reading a source or writing fd failed (-EIO: a source
 *            changed size while being read)
 * When ret_bad is not NULL it is set to the index of the entry the error is
 * about, or to (size_t)-1 when it is about no single entry. On error part of
 * the image may have been written. */
int64_t iso9660_write_fd(int fd, const struct iso9660_entry *entries, size_t n,
                         const struct iso9660_options *o, size_t *ret_bad);

/* Like iso9660_write_fd into a new file at path (mode 0644), atomically: the
 * image is written to a temporary file in the same directory, synced and
 * renamed over path; on failure path is left as it was and no temporary
 * file remains. */
int64_t iso9660_write(const char *path, const struct iso9660_entry *entries, size_t n,
                      const struct iso9660_options *o, size_t *ret_bad);
