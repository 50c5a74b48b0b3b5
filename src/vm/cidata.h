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
