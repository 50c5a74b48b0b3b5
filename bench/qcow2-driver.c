/* SPDX-License-Identifier: Apache-2.0 */
/*
 * qcow2-driver.c — runs one kiln format writer, for bench/qcow2.sh (which
 * compiles it against src/base and src/image/format.c + qcow2.c):
 *
 *     qcow2-driver IN OUT FORMAT [CLUSTER-COMPRESSION [FILE-COMPRESSION
 *                  [THREADS [sha256|sha512|both|none [LEVEL]]]]]
 *
 * FORMAT is raw or qcow2, compressions are none/zstd/zlib/xz/gzip. Prints
 * "bytes SIZE sha256 HEX" on success; exits 1 with the error otherwise.
 */
#include "image/format.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
        if (argc < 4) {
                fprintf(stderr, "usage: %s IN OUT FORMAT [CLUSTER [FILE [THREADS [HASH [LEVEL]]]]]\n",
                        argv[0]);
                return 2;
        }
        const struct format_writer *w = format_find(argv[3]);
        struct format_options o = {.sha256 = true};
        if (!w || (argc > 4 && compress_parse(argv[4], &o.cluster_compression) < 0) ||
            (argc > 5 && compress_parse(argv[5], &o.file_compression) < 0)) {
                fprintf(stderr, "bad format or compression\n");
                return 2;
        }
        if (argc > 6)
                o.threads = (unsigned)atoi(argv[6]);
        if (argc > 7) {
                o.sha256 = !strcmp(argv[7], "sha256") || !strcmp(argv[7], "both");
                o.sha512 = !strcmp(argv[7], "sha512") || !strcmp(argv[7], "both");
        }
        if (argc > 8)
                o.level = atoi(argv[8]);
        int in = open(argv[1], O_RDONLY | O_CLOEXEC);
        int out = open(argv[2], O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
        struct stat st;
        if (in < 0 || out < 0 || fstat(in, &st) < 0) {
                perror("open");
                return 1;
        }
        struct format_result res;
        int r = w->write(in, (uint64_t)st.st_size, out, &o, &res);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", argv[2], strerror(-r));
                return 1;
        }
        printf("bytes %llu sha256 %s sha512 %s\n", (unsigned long long)res.bytes_written,
               res.sha256[0] ? res.sha256 : "-", res.sha512[0] ? res.sha512 : "-");
        return close(out) < 0;
}
