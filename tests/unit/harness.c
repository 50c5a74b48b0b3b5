/* SPDX-License-Identifier: Apache-2.0 */
#include "harness.h"

#include "base/strbuf.h"

#include <sys/wait.h>

#include <stdarg.h>

struct test {
        const char *name;
        void (*fn)(void);
};

static struct test *tests;
static size_t ntests, cap;
static bool current_failed;

void test_register(const char *name, void (*fn)(void)) {
        GROW(tests, ntests, cap);
        tests[ntests++] = (struct test){name, fn};
}

void test_fail(const char *file, int line, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stdout, "    %s:%d: ", file, line);
        vfprintf(stdout, fmt, ap);
        fputc('\n', stdout);
        va_end(ap);
        current_failed = true;
}

const char *test_data_dir(void) {
        const char *d = getenv("KILN_TEST_DATA");
        return d ? d : "tests";
}

static bool selected(const char *name, int argc, char **argv) {
        if (argc <= 1)
                return true;
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], name))
                        return true;
        return false;
}

int main(int argc, char **argv) {
        unsigned passed = 0, failed = 0;
        setvbuf(stdout, NULL, _IOLBF, 0);
        for (size_t i = 0; i < ntests; i++) {
                if (!selected(tests[i].name, argc, argv))
                        continue;
                current_failed = false;
                tests[i].fn();
                if (current_failed) {
                        printf("FAIL %s\n", tests[i].name);
                        failed++;
                } else {
                        printf("ok   %s\n", tests[i].name);
                        passed++;
                }
        }
        free(tests);
        printf("%u passed, %u failed\n", passed, failed);
        return failed ? 1 : 0;
}

int test_sh(struct strbuf *out, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *cmd = xvasprintf(fmt, ap);
        va_end(ap);
        _cleanup_free_ char *full = xasprintf("%s 2>&1", cmd);
        FILE *f = popen(full, "r");
        if (!f)
                return -1;
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                if (out)
                        strbuf_add(out, buf, n);
        int st = pclose(f);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
