/* SPDX-License-Identifier: Apache-2.0 */
/*
 * disk.h — a bootable disk image from a root tree, written into a regular
 * file from user space: no loop devices, no device-mapper, no mounts of the
 * image (the tree itself is an overlay mounted in a private namespace), and
 * nothing ever mounts FAT (the ESP is written with mkfs.fat and mtools).
 *
 * Layout (GPT, written by kiln: protective MBR, primary and backup headers
 * and entry arrays with their CRC32s; every partition starts on a 1 MiB
 * boundary). Without a partition list (opts->parts == NULL) it is:
 *
 *   1  BIOS boot   1 MiB   GRUB's core.img for legacy BIOS boot
 *   2  ESP        64 MiB   FAT32; EFI/BOOT/BOOTX64.EFI (GRUB) for UEFI boot
 *   3  root       rest     ext4 (or xfs), populated from the tree
 *
 * A partition list (disk_part_req, in disk order) may instead name any
 * order of at most one BIOS boot partition (no BIOS boot without it), at
 * most one ESP (no UEFI boot without it), exactly one root and up to
 * DISK_MAX_PARTS in all, with extra "linux" data partitions mounted at a
 * path of the tree and populated from that subtree (which the root then
 * shows as an empty mount point). At most one partition has no size and
 * takes what is left. Filesystems: ext4 (mkfs.ext4 -d, at the partition's
 * offset) or xfs (mkfs.xfs -p with a protofile kiln generates from the
 * tree, made in a scratch file and copied in sparsely; see docs/image.md
 * for what xfs cannot carry: kiln refuses trees with extended attributes
 * or file capabilities, names with whitespace, and copies hard links).
 *
 * Boot: the MBR carries GRUB's boot.img (as grub-bios-setup would write it)
 * pointing at core.img in partition 1; the ESP carries a GRUB EFI image at
 * the removable-media path. Both images embed a small config that finds the
 * root filesystem by UUID and loads /boot/grub/grub.cfg from it, which boots
 * the tree's newest kernel and its initramfs with root=UUID=... ro
 * console=tty0 console=ttyS0. /etc/fstab names every mounted partition (root,
 * ESP, data partitions) by filesystem UUID.
 * When the root is the last partition, a oneshot unit run on every boot
 * (kiln-growroot.service) grows it and its filesystem when the disk has
 * become larger (a no-op otherwise); it needs from the tree: findmnt and
 * partx (util-linux), resize2fs (e2fsprogs) or xfs_growfs (xfsprogs), and
 * growpart (cloud-guest-utils) or sfdisk (fdisk). disk_assemble logs a
 * warning when they are missing.
 *
 * What the tree must contain (x86_64): a kernel /boot/vmlinuz-VERSION and
 * its initramfs /boot/initrd.img-VERSION (the newest VERSION by version sort
 * is booted), grub-mkimage (grub-common) and GRUB's BIOS and EFI modules
 * (grub-pc-bin, grub-efi-amd64-bin). The bootloader files are built with
 * the tree's own GRUB, inside the tree; the filesystems are made with the
 * host's e2fsprogs, dosfstools and mtools.
 *
 * The cached layers are never modified: the generated files (/etc/fstab,
 * /boot/grub/grub.cfg, the growroot unit) go into an extra overlay layer in
 * opts->scratch_dir.
 *
 * UUIDs (disk, partitions, filesystems, ext4's directory hash seed) are
 * derived from opts->seed, so the same inputs give the same identifiers;
 * timestamps written by the tools come from opts->source_date_epoch where
 * the tools honour SOURCE_DATE_EPOCH / E2FSPROGS_FAKE_TIME.
 *
 * UUID byte order: every uint8_t[16] here holds a UUID in RFC 4122 order
 * (the order of its text form, "00112233-4455-6677-8899-aabbccddeeff" is
 * bytes 00 11 22 ... ff). GPT stores GUIDs mixed-endian on disk (the first
 * three fields little-endian); gpt_write converts.
 *
 * Architecture facts (the root partition's GPT type, GRUB's targets, the
 * EFI file name, the serial console, which boot loaders) come from
 * base/arch.h's table. An architecture whose row lists no boot loader
 * (aarch64 today) plans but does not assemble: -EOPNOTSUPP.
 */
#pragma once

#include "provision/sandbox.h"
#include "spec/value.h"

#include <stdint.h>

#define DISK_SECTOR 512u
#define DISK_ALIGN (1024u * 1024u)             /* partition alignment and size unit */
#define DISK_BIOS_SIZE (1024u * 1024u)         /* default BIOS boot partition */
#define DISK_ESP_SIZE (64u * 1024u * 1024u)    /* default ESP */
#define DISK_MIN_ROOT_SIZE (32u * 1024u * 1024u)
/* The smallest FAT32 ESP kiln makes: FAT32 needs at least 65525 clusters,
 * which with 512-byte clusters, 32 reserved sectors and two FATs is just
 * over 32 MiB. UEFI expects FAT32 on a fixed disk, so smaller (FAT16/12)
 * ESPs are refused rather than written. */
#define DISK_MIN_ESP_SIZE (33u * 1024u * 1024u)
/* mkfs.xfs (xfsprogs 6.1) refuses filesystems below 300 MiB. */
#define DISK_MIN_XFS_SIZE (300u * 1024u * 1024u)
/* The smallest disk: the partitions above plus the GPT areas (rounded to
 * 1 MiB at each end). A real tree needs far more; mkfs.ext4 then fails with
 * "Could not allocate block" in the log. */
#define DISK_MIN_SIZE (DISK_ALIGN + DISK_BIOS_SIZE + DISK_ESP_SIZE + DISK_MIN_ROOT_SIZE + DISK_ALIGN)
#define DISK_MAX_SIZE (1ULL << 48)             /* 256 TiB: keeps all arithmetic far from overflow */
#define DISK_MAX_PARTS 16u
#define DISK_MOUNT_MAX 256u                    /* length of a data partition's mount path */

#define GPT_ENTRIES 128u                       /* entries in each array (the minimum the spec allows) */
#define GPT_ENTRY_SIZE 128u

/* Indices of the default layout's partitions. */
enum { DISK_PART_BIOS, DISK_PART_ESP, DISK_PART_ROOT, DISK_NPARTS };

enum disk_part_type { DISK_PT_BIOS, DISK_PT_ESP, DISK_PT_ROOT, DISK_PT_LINUX, DISK_PT_COUNT };

/* The partition types' spec names ("bios", "esp", "root", "linux"), indexed
 * by enum disk_part_type, NULL-terminated. */
extern const char *const disk_part_type_names[];

/* One partition asked for (the spec's disk.partitions[] entry). Strings are
 * borrowed. */
struct disk_part_req {
        enum disk_part_type type;
        uint64_t size;               /* bytes (rounded up to 1 MiB); 0: what is left */
        const char *filesystem;      /* root/linux: "ext4" (default) or "xfs"; others NULL */
        const char *mount;           /* linux only, required: absolute, normalised, e.g.
                                        "/var/lib/containers" */
        const char *label;           /* GPT name and filesystem label; NULL: the default
                                        ("bios", "esp", "root", the mount's last component) */
};

struct disk_partition {
        const char *name;            /* GPT name, ASCII, <= 36: static, borrowed from the request's
                                        label, or name_buf (a copy of the layout must re-point it) */
        char name_buf[17];
        enum disk_part_type type;
        uint8_t type_guid[16];       /* RFC 4122 order */
        uint8_t part_guid[16];       /* RFC 4122 order */
        uint64_t first_lba, last_lba; /* inclusive, in 512-byte sectors */
        const char *fs;              /* "ext4", "xfs", "vfat"; NULL for BIOS boot */
        char fs_uuid[37];            /* ext4/xfs: UUID text; vfat: "XXXX-XXXX"; "" for none */
        const char *mount;           /* "/", "/boot/efi", a data mount; NULL for BIOS boot */
        char purpose[DISK_MOUNT_MAX + 16]; /* what its UUIDs derive from ("root", "data:/srv") */
};

struct disk_layout {
        uint64_t size;               /* bytes, a multiple of 1 MiB */
        uint8_t disk_guid[16];       /* RFC 4122 order */
        struct disk_partition parts[DISK_MAX_PARTS]; /* in disk order */
        unsigned nparts;
        int bios, esp, root;         /* indices into parts; bios/esp -1 when absent */
        char root_fs_uuid[37];       /* text form, lowercase */
        char esp_fs_id[10];          /* FAT volume id "XXXX-XXXX" (uppercase hex, as blkid shows
                                        it); "" without an ESP */
        const char *root_fs;         /* "ext4" or "xfs" */
};

struct disk_options {
        uint64_t size;               /* requested disk size in bytes (rounded up to 1 MiB) */
        const char *arch;            /* a kiln name in base/arch.h's table: "x86_64" (also
                                        "aarch64" for disk_plan only) */
        const char *seed;            /* any string: UUIDs derive from it */
        const char *root_fs;         /* without parts: "ext4" (NULL) or "xfs" */
        const struct disk_part_req *parts; /* NULL: the default layout */
        size_t nparts;
        uint64_t source_date_epoch;  /* timestamps in the filesystems */
        const char *kernel_cmdline_extra; /* appended after the defaults; may be NULL;
                                             whitespace-separated words without quotes,
                                             backslashes or control characters (GRUB would pass
                                             those on escaped); anything else arrives as written */
        /* The tree: layers (topmost first) for an overlay, as for sandbox.h,
         * plus scratch space on the same filesystem as the layers. */
        const char *const *layers;
        size_t nlayers;              /* 1 .. SANDBOX_MAX_LAYERS - 1 */
        const char *scratch_dir;     /* kiln may create anything inside (it uses scratch_dir/disk/,
                                        removed first if present, and leaves prep/ and boot/ there
                                        for inspection; the caller removes the scratch dir) */
        int log_fd;                  /* tool output and kiln's own messages go here; -1: nowhere */
};

/* Computes the layout for opts (sizes, GUIDs from the seed); no I/O.
 * Uses opts->size, arch, seed, root_fs and parts only. Returns 0, -EINVAL
 * (NULL arguments, no seed, size below DISK_MIN_SIZE or above
 * DISK_MAX_SIZE, a partition list that breaks the rules above or does not
 * fit) or -EOPNOTSUPP (unknown architecture). Without parts, the layout is
 * the same as it always was (the same GUIDs, UUIDs and offsets). The spec
 * checker (spec/builds.c, check_disk) reports the same rules at their
 * file:line:column; these checks only guard the API. */
int disk_plan(const struct disk_options *opts, struct disk_layout *ret);

/* Reads a spec's checked `disk:` map (spec/builds.c checks it; NULL: no
 * disk settings) into o->root_fs, o->parts and o->nparts. *ret_parts is
 * the array o->parts points at (owned by the caller, free() it; NULL
 * without a partition list); the strings stay borrowed from disk. Returns
 * 0 or -EINVAL for a map the spec checker would not have let through. */
int disk_options_from_spec(const struct value *disk, struct disk_options *o,
                           struct disk_part_req **ret_parts);

/* Writes the whole raw disk into out_fd: an open, writable regular file,
 * which is truncated to layout->size first (holes stay sparse; the caller
 * fsyncs and renames it if it wants to). Needs root (sandbox.h). Returns 0
 * or -errno: -EINVAL for bad options or a layout disk_plan would not make
 * (or a tree whose /etc, /boot, /usr/lib... is a symlink: kiln writes there),
 * -EOPNOTSUPP for an architecture without a bootloader entry, -ENOENT when
 * the tree lacks a kernel, initramfs or GRUB (the log names the packages),
 * -EIO when a tool failed (its output is in the log). Details, including
 * every command line and its output, go to opts->log_fd. */
int disk_assemble(const struct disk_options *opts, const struct disk_layout *layout, int out_fd);

/* Writes one filesystem, as disk_assemble writes a data partition: fs
 * ("ext4" or "xfs"), labelled label, with UUID uuid (text form), size bytes
 * (a multiple of 1 MiB) at byte offset (a multiple of 512) of the regular
 * file out_fd, populated from the directory dir of the tree (relative, no
 * leading '/'; "" for the whole tree, NULL for an empty filesystem). Uses
 * opts' layers, scratch_dir, seed, source_date_epoch and log_fd. Needs root.
 * Returns 0, -EINVAL (bad arguments, or a tree xfs cannot carry: the log
 * says what), -EIO (a tool failed) or -errno. */
int disk_make_filesystem(const struct disk_options *opts, const char *fs, const char *label,
                         const char *uuid, const char *dir, uint64_t offset, uint64_t size,
                         int out_fd);

/* Writes the protective MBR (bytes 440..511 of sector 0 only: the boot code
 * area 0..439 is left as it is) and both GPT copies for layout into fd,
 * which must be at least layout->size long or extendable. Returns 0, -EINVAL
 * for an inconsistent layout (partitions overlapping, outside the usable
 * area, size not a multiple of 512) or -errno from pwrite. */
int gpt_write(int fd, const struct disk_layout *layout);

/* A v4-style UUID derived from seed and a purpose ("root-fs", "esp-part"):
 * the first 16 bytes of SHA-256(seed "\0" purpose) with the version (4) and
 * variant (10xx) bits set. Deterministic; distinct purposes give unrelated
 * UUIDs. Cannot fail (a libcrypto failure is treated like out-of-memory). */
void uuid_derive(const char *seed, const char *purpose, uint8_t out[16]);
/* Formats an RFC 4122-order UUID as lowercase text (36 characters + NUL);
 * this is the usual text form of the GUID, the one sfdisk and blkid print. */
void uuid_format(const uint8_t uuid[16], char out[37]);
/* Parses the text form (either case) into RFC 4122 order. Returns 0 or
 * -EINVAL. */
int uuid_parse(const char *text, uint8_t out[16]);
