/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cidata.h — cloud-init NoCloud seed ISOs.
 *
 * A NoCloud seed is an ISO 9660 filesystem labelled `cidata` holding
 * `user-data`, `meta-data` and optionally `network-config` and
 * `vendor-data` in its root directory. cloud-init finds it by the label.
 * The ISO is written by kiln's own ISO 9660 writer (iso9660.h), never by
 * xorriso/genisoimage.
 */
#pragma once

#include <stddef.h>
#include <time.h>

struct cidata {
        const char *user_data;       /* required, e.g. "#cloud-config\n..." */
        const char *meta_data;       /* required, e.g. "instance-id: x\nlocal-hostname: y\n" */
        const char *network_config;  /* optional (NULL: file omitted) */
        const char *vendor_data;     /* optional (NULL: file omitted) */
};

/* Writes the seed ISO to path atomically (a temporary file renamed into
 * place: a failed write leaves nothing at path). Returns 0 or -errno
 * (-EINVAL when a required file is missing). */
int cidata_write(const char *path, const struct cidata *c);

/* ---- additions ------------------------------------------------------------ */

/* cidata_write dates every record with spec_now(): SOURCE_DATE_EPOCH when
 * set and valid, else the current time; with SOURCE_DATE_EPOCH the same
 * contents give the same bytes. cidata_write_at takes the timestamp
 * explicitly (same return values; -EINVAL also for a timestamp before 1970
 * or after 2155). */
int cidata_write_at(const char *path, const struct cidata *c, time_t timestamp);

/* Like cidata_write_at with extra files and directories on the ISO besides
 * the seed files (cloud-init ignores them; a user-data script may use
 * them). Returns what iso9660_write returns (-EEXIST: an extra path is one
 * of the seed files or given twice); *ret_bad (when not NULL) is the index
 * in extra of the entry an error is about, or (size_t)-1. */
struct iso9660_entry;
int cidata_write_extra(const char *path, const struct cidata *c, const struct iso9660_entry *extra,
                       size_t nextra, time_t timestamp, size_t *ret_bad);

#define CIDATA_FILE_MAX (16u * 1024 * 1024) /* bytes per seed file */

/* Generated seed files, for callers that have no files of their own (kiln
 * cidata's --hostname/--user/--ssh-key, kiln boot).
 *
 * cidata_meta_data_new: "instance-id: ID\n" plus "local-hostname: NAME\n"
 * when hostname is not NULL. instance_id: 1..64 characters of [A-Za-z0-9._-];
 * hostname: an RFC 1123 host name (labels of [A-Za-z0-9-], 1..63 characters,
 * not starting or ending with '-', at most 253 in all). Returns 0 and an
 * owned string in *ret, or -EINVAL. */
int cidata_meta_data_new(const char *instance_id, const char *hostname, char **ret);

/* cidata_user_data_new: a "#cloud-config" document. With user: that user is
 * created (passwordless sudo, /bin/bash, password locked) with the keys as
 * its ssh_authorized_keys; without: the keys go to the image's default user
 * (top-level ssh_authorized_keys). keys: n OpenSSH public key lines (type,
 * base64, optional comment; no newlines). user: 1..32 characters of
 * [a-z0-9_-] starting with a letter or '_'. Strings are YAML double-quoted.
 * Returns 0 and an owned string in *ret, or -EINVAL naming nothing: callers
 * validate and report (cidata_check_* below). */
int cidata_user_data_new(const char *user, const char *const *keys, size_t n, char **ret);

/* Validators used by the above, for callers that want to report which
 * value is wrong: return 0 or -EINVAL. */
int cidata_check_hostname(const char *s);
int cidata_check_user(const char *s);
int cidata_check_ssh_key(const char *s);
int cidata_check_instance_id(const char *s);

/* ---- a seed from parts (kiln cidata; a service taking the same request) ---- */

/* What a seed is made of when not every file is given as it is. */
struct cidata_parts {
        struct cidata given;         /* files as they are; a NULL user_data or
                                        meta_data is generated from the rest */
        const char *user;            /* generated user-data: cidata_user_data_new's */
        const char *const *keys;
        size_t nkeys;
        const char *hostname;        /* generated meta-data: cidata_meta_data_new's */
        const char *instance_id;     /* NULL: cidata_default_instance_id() */
};

/* A seed ready for cidata_write*: files points into the parts' strings and
 * into the generated ones, which the seed owns. */
struct cidata_seed {
        struct cidata files;
        char *user_data, *meta_data; /* generated (or NULL), owned */
};

/* Makes the seed of p. Returns 0 (free *ret with cidata_seed_done), -EINVAL
 * when a part is not valid (check them first with cidata_check_* to say
 * which), or what cidata_default_instance_id returns. */
int cidata_seed_make(const struct cidata_parts *p, struct cidata_seed *ret);
void cidata_seed_done(struct cidata_seed *s);

/* "iid-" and the first 16 hex digits of the SHA-256 of user_data, a NUL
 * byte and hostname (NULL: ""): other user-data or another host name is
 * another instance, so cloud-init runs its per-instance modules again.
 * Returns 0, or -EIO when hashing failed. */
#define CIDATA_INSTANCE_ID_LEN 20
int cidata_default_instance_id(const char *user_data, const char *hostname,
                               char ret[CIDATA_INSTANCE_ID_LEN + 1]);

/* Appends the key lines of an OpenSSH public key file's text (blank lines
 * and #-comments skipped, CRLF and leading blanks allowed) to *keys and *n
 * as owned strings (free each and the array). Returns 0; -EINVAL with
 * *ret_line the 1-based line that is not a public key (cidata_check_ssh_key;
 * the keys before it stay appended); -ENODATA when the text has no key. */
int cidata_ssh_keys_parse(const char *text, char ***keys, size_t *n, size_t *ret_line);
