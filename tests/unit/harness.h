/* SPDX-License-Identifier: Apache-2.0 */
/*
 * harness.h — kiln's unit-test harness. A test is
 *
 *     TEST(name) { CHECK(expr); CHECK_STREQ(a, b); CHECK_INT(a, ==, b); }
 *
 * Tests register themselves at start-up; harness.c's main runs them all (or
 * those named on the command line), prints "ok"/"FAIL" per test and ends with
 * "N passed, N failed", which tests/run-all.sh adds up.
 */
#pragma once

#include "base/util.h"

void test_register(const char *name, void (*fn)(void));
void test_fail(const char *file, int line, const char *fmt, ...) _printf_(3, 4);
/* Directory holding test data (tests/), from $KILN_TEST_DATA or the default. */
const char *test_data_dir(void);
struct strbuf;
/* Runs a shell command (printf-style), stdout and stderr into out (may be
 * NULL); its exit status, -1 when it did not exit. */
int test_sh(struct strbuf *out, const char *fmt, ...) _printf_(2, 3);

#define TEST(name)                                                             \
        static void test_##name(void);                                         \
        __attribute__((constructor)) static void register_##name(void) {       \
                test_register(#name, test_##name);                             \
        }                                                                      \
        static void test_##name(void)

#define CHECK(expr)                                                            \
        do {                                                                   \
                if (!(expr))                                                   \
                        test_fail(__FILE__, __LINE__, "CHECK(%s)", #expr);     \
        } while (0)

#define CHECK_STREQ(a, b)                                                      \
        do {                                                                   \
                const char *_a = (a), *_b = (b);                               \
                if (!_a || !_b || strcmp(_a, _b) != 0)                         \
                        test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, \
                                  _a ? _a : "(null)", _b ? _b : "(null)");     \
        } while (0)

#define CHECK_INT(a, op, b)                                                    \
        do {                                                                   \
                long long _a = (long long)(a), _b = (long long)(b);            \
                if (!(_a op _b))                                               \
                        test_fail(__FILE__, __LINE__, "%s %s %s: %lld vs %lld", #a, #op, #b, \
                                  _a, _b);                                     \
        } while (0)
