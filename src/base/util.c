/* SPDX-License-Identifier: Apache-2.0 */
#include "base/util.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>

void die_oom(void) {
        fputs("kiln: out of memory\n", stderr);
        abort();
}

void *xmalloc(size_t n) {
        void *p = malloc(n ? n : 1);
        if (!p)
                die_oom();
        return p;
}

void *xcalloc(size_t n, size_t size) {
        void *p = calloc(n ? n : 1, size ? size : 1);
        if (!p)
                die_oom();
        return p;
}

void *xreallocarray(void *p, size_t n, size_t size) {
        if (size && n > SIZE_MAX / size)
                die_oom();
        size_t bytes = n * size;
        void *q = realloc(p, bytes ? bytes : 1);
        if (!q)
                die_oom();
        return q;
}

char *xstrdup(const char *s) {
        char *r = strdup(s);
        if (!r)
                die_oom();
        return r;
}

char *xstrdup_null(const char *s) { return s ? xstrdup(s) : NULL; }

char *xstrndup(const char *s, size_t n) {
        char *r = strndup(s, n);
        if (!r)
                die_oom();
        return r;
}

char *xvasprintf(const char *fmt, va_list ap) {
        char *r;
        if (vasprintf(&r, fmt, ap) < 0)
                die_oom();
        return r;
}

char *xasprintf(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *r = xvasprintf(fmt, ap);
        va_end(ap);
        return r;
}

bool endswith(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

int read_file(const char *path, size_t max, char **ret_buf, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        size_t cap = 4096, len = 0;
        _cleanup_free_ char *buf = xmalloc(cap + 1);
        for (;;) {
                if (len == cap) {
                        if (cap > max)
                                return -E2BIG;
                        cap *= 2;
                        buf = xreallocarray(buf, cap + 1, 1);
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max)
                        return -E2BIG;
        }
        buf[len] = 0;
        *ret_buf = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

int mkdir_p(const char *path, unsigned mode) {
        _cleanup_free_ char *p = xstrdup(path);
        for (char *c = p + 1; *c; c++) {
                if (*c != '/')
                        continue;
                *c = 0;
                if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST)
                        return -errno;
                *c = '/';
        }
        if (mkdir(p, (mode_t)mode) < 0) {
                if (errno != EEXIST)
                        return -errno;
                struct stat st;
                if (stat(p, &st) < 0)
                        return -errno;
                if (!S_ISDIR(st.st_mode))
                        return -ENOTDIR;
        }
        return 0;
}

void format_bytes(unsigned long long bytes, char *buf, size_t n) {
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        double v = (double)bytes;
        size_t i = 0;
        while (v >= 1024 && i < ARRAY_SIZE(units) - 1) {
                v /= 1024;
                i++;
        }
        snprintf(buf, n, i ? "%.1f %s" : "%.0f %s", v, units[i]);
}

void hex_encode(const unsigned char *data, size_t len, char *out) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < len; i++) {
                out[2 * i] = digits[data[i] >> 4];
                out[2 * i + 1] = digits[data[i] & 15];
        }
        out[2 * len] = 0;
}

int write_all(int fd, const void *data, size_t len) {
        const char *p = data;
        while (len) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int write_file(const char *path, const void *data, size_t len, unsigned mode, unsigned flags) {
        _cleanup_free_ char *tmp = flags & WRITE_FILE_ATOMIC ? xasprintf("%s.tmp", path) : NULL;
        const char *target = tmp ? tmp : path;
        int fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
        if (fd < 0)
                return -errno;
        int r = write_all(fd, data, len);
        if (r == 0 && fchmod(fd, (mode_t)mode) < 0)
                r = -errno;
        if (r == 0 && (flags & WRITE_FILE_SYNC) && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && tmp && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0 && tmp)
                unlink(tmp);
        return r;
}

int read_lines(const char *path, size_t max, char ***ret_lines, size_t *ret_n) {
        _cleanup_free_ char *text = NULL;
        int r = read_file(path, max, &text, NULL);
        if (r < 0)
                return r;
        char **v = xcalloc(1, sizeof(char *));
        size_t n = 0;
        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                if (!*line)
                        continue;
                v = xreallocarray(v, n + 2, sizeof(char *));
                v[n++] = xstrdup(line);
                v[n] = NULL;
        }
        *ret_lines = v;
        *ret_n = n;
        return 0;
}
