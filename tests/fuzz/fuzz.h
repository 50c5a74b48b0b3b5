/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the fuzz entry points (tests/fuzz/fuzz_*.c).
 *
 * Each entry point defines `int fuzz_<name>_one(const uint8_t *, size_t)`
 * and, unless FUZZ_REPLAY is defined, the libFuzzer hook
 * LLVMFuzzerTestOneInput calling it (FUZZ_ENTRY below). The unit test
 * tests/unit/test_fuzz_replay.c defines FUZZ_REPLAY, #includes every entry
 * point and replays each one's corpus through its named function.
 *
 * Inputs that the code under test reads from files (var files, manifests)
 * are written into one scratch directory per process, removed at exit.
 */
#ifndef KILN_FUZZ_H
#define KILN_FUZZ_H

#include "base/strbuf.h"
#include "base/util.h"
#include "spec/render.h"
#include "spec/spec.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef FUZZ_REPLAY
#define FUZZ_ENTRY(fn)
#else
#define FUZZ_ENTRY(fn)                                                      \
        int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);       \
        int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {      \
                return fn(data, size);                                      \
        }
#endif

static char fuzz_dir_path[256];

static void fuzz_dir_remove(void) {
        if (!fuzz_dir_path[0])
                return;
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", fuzz_dir_path);
        if (system(cmd) != 0)
                fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir_path);
}

/* The per-process scratch directory (created on first use). */
static __attribute__((unused)) const char *fuzz_dir(void) {
        if (!fuzz_dir_path[0]) {
                const char *t = getenv("TMPDIR");
                snprintf(fuzz_dir_path, sizeof(fuzz_dir_path), "%s/kiln-fuzz-XXXXXX",
                         t && *t ? t : "/tmp");
                if (!mkdtemp(fuzz_dir_path))
                        abort();
                atexit(fuzz_dir_remove);
        }
        return fuzz_dir_path;
}

/* Writes data to dir/name (replacing it); returns the path (owned). */
static __attribute__((unused)) char *fuzz_write(const char *dir, const char *name,
                                                const void *data, size_t size) {
        char *path = xasprintf("%s/%s", dir, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                abort();
        for (size_t off = 0; off < size;) {
                ssize_t n = write(fd, (const char *)data + off, size - off);
                if (n <= 0)
                        abort();
                off += (size_t)n;
        }
        close(fd);
        return path;
}

/* head, then data with every line indented by indent spaces (so that it
 * is the value of the key head ends with), then tail. Owned. */
static __attribute__((unused)) char *fuzz_embed(const char *head, const void *data, size_t size,
                                                unsigned indent, const char *tail, size_t *ret_len) {
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, head);
        const char *p = data, *end = p + size;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
                strbuf_addf(&sb, "%*s", (int)indent, "");
                strbuf_add(&sb, p, n);
                p += n;
        }
        if (size && end[-1] != '\n')
                strbuf_adds(&sb, "\n");
        strbuf_adds(&sb, tail);
        *ret_len = sb.len;
        return strbuf_detach(&sb);
}

/* With KILN_FUZZ_SHOW set, prints what an input produced (to look at one). */
static __attribute__((unused)) void fuzz_show(const char *what) {
        if (getenv("KILN_FUZZ_SHOW"))
                fprintf(stderr, "%s\n", what);
}

/* Renders what a fuzz run produced into out: the spec (text and JSON) when
 * s is not NULL, then every diagnostic, sorted (text and JSON); shown on
 * stderr with KILN_FUZZ_SHOW. Diagnostics point into the spec's sources:
 * call this before freeing s. */
static __attribute__((unused)) void fuzz_render(const struct spec *s, struct diag_list *d,
                                                struct strbuf *out) {
        if (s) {
                spec_render_text(s, out, true);
                spec_render_json(s, out);
        }
        diag_sort(d);
        diag_render(d, out, true);
        diag_render_json(d, out);
        fuzz_show(strbuf_str(out));
}

/* The oracle for secrets: a sensitive value must not show in out. Only
 * values that cannot appear there for another reason are checked: at
 * least 8 characters, with a digit and a letter, only letters and digits,
 * found once in the input and not in the fixed text around it. */
static __attribute__((unused)) void fuzz_check_secrets(const char *const *secrets,
                                                       const char *out, const void *input,
                                                       size_t input_len, const char *fixed) {
        for (size_t i = 0; secrets && secrets[i]; i++) {
                const char *s = secrets[i];
                size_t n = strlen(s);
                bool digit = false, alpha = false, plain = n >= 8;
                for (size_t k = 0; k < n && plain; k++) {
                        digit = digit || (s[k] >= '0' && s[k] <= '9');
                        alpha = alpha || ((s[k] | 0x20) >= 'a' && (s[k] | 0x20) <= 'z');
                        plain = (s[k] >= '0' && s[k] <= '9') || ((s[k] | 0x20) >= 'a' &&
                                                                  (s[k] | 0x20) <= 'z');
                }
                if (!plain || !digit || !alpha || strstr(fixed, s))
                        continue;
                const char *first = memmem(input, input_len, s, n);
                if (!first || memmem(first + 1, input_len - (size_t)(first + 1 - (const char *)input),
                                     s, n))
                        continue;
                if (strstr(out, s)) {
                        fprintf(stderr, "fuzz: sensitive value '%s' shown in:\n%s\n", s, out);
                        abort();
                }
        }
}

/* The spec of the variable fuzzers: a variable of every type, sensitive
 * ones, validation rules, and uses of each. */
static __attribute__((unused)) const char fuzz_vars_spec[] =
        "variables:\n"
        "  str: {type: string, default: d, validation: {regex: '^[a-z0-9.]*$'}}\n"
        "  num: {type: number, default: 1}\n"
        "  flag: {type: bool, default: false}\n"
        "  items: {type: list, default: [a]}\n"
        "  opts: {type: map, default: {k: v}}\n"
        "  suite: {default: bookworm, validation: {allowed: [bookworm, trixie]}}\n"
        "  token: {type: string, sensitive: true, default: x}\n"
        "  keys: {type: list, sensitive: true, default: []}\n"
        "  required:\n"
        "builds:\n"
        "  b:\n"
        "    source: {type: debian, suite: '${var.suite}'}\n"
        "    name: 'b-${var.str}-${var.num}'\n"
        "    labels: {flag: '${var.flag}', n: '${join(\",\", var.items)}', t: '${upper(var.token)}'}\n"
        "    steps:\n"
        "      - packages: ${var.items}\n"
        "      - shell: 'echo ${var.token} ${var.required} ${var.opts.k}'\n";

/* The variable fuzzers' run: loads fuzz_vars_spec with the variables o
 * carries (var files, --var, KILN_VAR_), renders the spec and every
 * diagnostic, and aborts when a sensitive value shows in them. input is the
 * fuzzer's input, for fuzz_check_secrets. */
static __attribute__((unused)) void fuzz_vars_load(struct spec_options *o, const void *input,
                                                   size_t input_len) {
        o->path = "fuzz.yaml";
        o->text = fuzz_vars_spec;
        o->text_len = sizeof(fuzz_vars_spec) - 1;
        o->now = 1700000000;
        struct diag_list d = {0};
        struct spec *s = NULL;
        struct strbuf out = STRBUF_INIT;
        spec_load(o, &d, &s);
        fuzz_render(s, &d, &out);
        if (s) {
                _cleanup_free_ const char **secrets = spec_secrets(s);
                fuzz_check_secrets(secrets, strbuf_str(&out), input, input_len, fuzz_vars_spec);
        }
        strbuf_free(&out);
        spec_free(s);
        diag_list_done(&d);
}

#endif
