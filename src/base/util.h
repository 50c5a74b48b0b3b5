/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.h — small helpers every kiln module uses: scoped cleanup, ownership
 * transfer, string predicates and allocation.
 *
 * Allocation policy: kiln treats running out of memory as fatal, as git does
 * (xmalloc and friends). A VM image factory that cannot allocate a few bytes
 * cannot do anything useful, and returning -ENOMEM from every string helper
 * would add thousands of untested branches. Everything else (bad input, I/O,
 * child processes) returns -errno as described in docs/style.md.
 */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Take ownership of *p: returns its value and sets the variable to NULL so
 * that a scoped cleanup on it does nothing. */
#define TAKE_PTR(p)                                                            \
        ({                                                                     \
                typeof(p) _ptr_ = (p);                                         \
                (p) = NULL;                                                    \
                _ptr_;                                                         \
        })

static inline void freep(void *p) { free(*(void **)p); }
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Defines `static inline void funcp(type **p)` calling func(*p) when set. */
#define DEFINE_POINTER_CLEANUP(type, func)                                     \
        static inline void func##p(type **p) {                                 \
                if (*p)                                                        \
                        func(*p);                                              \
        }

/* Aborts with a message: used only for out-of-memory (see above). */
_noreturn_ void die_oom(void);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
/* Resizes p to n*size bytes, aborting on overflow of n*size. */
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
/* NULL-safe: returns NULL for NULL. */
char *xstrdup_null(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) _printf_(1, 2);
char *xvasprintf(const char *fmt, va_list ap) _printf_(1, 0);

static inline bool streq(const char *a, const char *b) { return strcmp(a, b) == 0; }
static inline bool streq_null(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
/* Returns the rest of s after prefix, or NULL when s does not start with it. */
static inline const char *startswith(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}
bool endswith(const char *s, const char *suffix);

/* Grows a dynamic array (ptr, count, capacity) to hold one more element. */
#define GROW(ptr, count, cap)                                                  \
        do {                                                                   \
                if ((count) >= (cap)) {                                        \
                        (cap) = (cap) ? (cap) * 2 : 8;                         \
                        (ptr) = xreallocarray((ptr), (cap), sizeof(*(ptr)));   \
                }                                                              \
        } while (0)

/* Creates path and its missing parents with mode (like mkdir -p). 0 also
 * when it already exists as a directory; -errno otherwise. */
int mkdir_p(const char *path, unsigned mode);

/* "512 B", "1.5 KiB", "2.0 GiB" into buf. */
void format_bytes(unsigned long long bytes, char *buf, size_t n);

/* Lowercase hex of len bytes into out (2*len+1 bytes with the NUL). */
void hex_encode(const unsigned char *data, size_t len, char *out);

/* Writes all len bytes to fd (retrying short writes and EINTR). */
int write_all(int fd, const void *data, size_t len);

enum {
        WRITE_FILE_SYNC = 1 << 0,   /* fsync before returning */
        WRITE_FILE_ATOMIC = 1 << 1, /* write PATH.tmp, then rename over PATH */
};
/* Creates or replaces path with data and exactly mode (umask ignored).
 * Returns 0 or -errno; with WRITE_FILE_ATOMIC a failure leaves path as it
 * was and no PATH.tmp behind. */
int write_file(const char *path, const void *data, size_t len, unsigned mode, unsigned flags);

/* Reads path (up to max bytes) as lines; empty lines are skipped. The
 * NULL-terminated array and its strings are owned by the caller. */
int read_lines(const char *path, size_t max, char ***ret_lines, size_t *ret_n);

/* Reads a whole file into a NUL-terminated buffer; fails with -E2BIG when it
 * is larger than max bytes. *ret_len excludes the terminator. */
int read_file(const char *path, size_t max, char **ret_buf, size_t *ret_len);
