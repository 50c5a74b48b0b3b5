/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The check runner: every check of a list in one sh script, run once
 * through a check_exec (one sandbox, or one SSH session, for the whole
 * list: setting up a target costs far more than a check).
 *
 * The script is the prelude below followed by one subshell per check.
 * Result lines look like "MARKER INDEX STATUS TEXT" where MARKER is random
 * per run, so nothing a checked command prints can pass for a result; a
 * check's subshell ends with "MARKER INDEX end", so a snippet that died
 * half-way is reported as failed rather than passed. Lines without the
 * marker are ignored.
 *
 * The tree target (check_exec_tree): a sandbox chrooted into the build's
 * layers with a fresh, throwaway upper layer and no network, exactly like
 * the engine's package listing; the layers are read-only lower dirs of the
 * overlay, so no check can change the tree or the cache.
 */
#include "check/check.h"

#include "base/clock.h"

#include "os/fs.h"
#include "os/sandbox.h"
#include "provision/build.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

const char *check_status_name(enum check_status s) {
        switch (s) {
        case CHECK_PASSED: return "passed";
        case CHECK_FAILED: return "failed";
        default: return "skipped";
        }
}

static const char prelude[] =
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        "export PATH LC_ALL=C\n"
        "kiln_r() { kiln_s=$1; shift; printf '\\n%s %s %s %s\\n' \"$K\" \"$I\" \"$kiln_s\" "
        "\"$(printf '%s' \"$*\" | tr '\\n\\r\\t' '   ' | cut -c1-2000)\"; }\n"
        "kiln_ftype() { if [ -L \"$1\" ]; then echo symlink; elif [ -d \"$1\" ]; then echo directory;"
        " elif [ -f \"$1\" ]; then echo file; elif [ -p \"$1\" ]; then echo fifo;"
        " elif [ -S \"$1\" ]; then echo socket; elif [ -b \"$1\" ] || [ -c \"$1\" ]; then echo device;"
        " else echo 'special file'; fi; }\n";

static void random_marker(char out[33]) {
        unsigned char b[16];
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, b, sizeof(b)) : -1;
        if (fd >= 0)
                close(fd);
        if (n != (ssize_t)sizeof(b)) {
                /* Not a secret, only unlikely to be printed by accident. */
                uint64_t t = now_ms() ^ (uint64_t)getpid() << 32;
                for (size_t i = 0; i < sizeof(b); i++)
                        b[i] = (unsigned char)(t >> (8 * (i % 8))) ^ (unsigned char)(i * 131);
        }
        hex_encode(b, sizeof(b), out);
        memcpy(out, "kiln", 4); /* readable in logs */
}

struct acc {
        struct strbuf ok, fail, skip;
        bool ended;
};

static void add_text(struct strbuf *sb, const char *text, size_t n) {
        if (sb->len)
                strbuf_adds(sb, "; ");
        strbuf_add(sb, text, n);
}

/* Reads the result lines of out into acc (one per check, by index). */
static void parse_output(const char *out, const char *marker, struct acc *acc, size_t n) {
        size_t ml = strlen(marker);
        for (const char *line = out; line && *line;) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t)(nl - line) : strlen(line);
                const char *m = memmem(line, len, marker, ml);
                if (m && (size_t)(m - line) + ml < len && m[ml] == ' ') {
                        const char *p = m + ml + 1, *end = line + len;
                        char *e;
                        unsigned long idx = strtoul(p, &e, 10);
                        if (e != p && e < end && *e == ' ' && idx >= 1 && idx <= n) {
                                struct acc *a = &acc[idx - 1];
                                p = e + 1;
                                const char *sp = memchr(p, ' ', (size_t)(end - p));
                                size_t wl = sp ? (size_t)(sp - p) : (size_t)(end - p);
                                const char *text = sp ? sp + 1 : end;
                                size_t tl = (size_t)(end - text);
                                if (wl == 2 && !memcmp(p, "ok", 2))
                                        add_text(&a->ok, text, tl);
                                else if (wl == 4 && !memcmp(p, "fail", 4))
                                        add_text(&a->fail, text, tl);
                                else if (wl == 4 && !memcmp(p, "skip", 4))
                                        add_text(&a->skip, text, tl);
                                else if (wl == 3 && !memcmp(p, "end", 3))
                                        a->ended = true;
                        }
                }
                line = nl ? nl + 1 : NULL;
        }
}

/* The last lines of the output, for a run that reported nothing. */
static char *output_tail(const char *out) {
        size_t n = strlen(out);
        size_t start = n > 400 ? n - 400 : 0;
        struct strbuf sb = STRBUF_INIT;
        for (size_t i = start; i < n; i++)
                strbuf_addc(&sb, out[i] == '\n' ? ' ' : out[i]);
        return strbuf_detach(&sb);
}

int check_run(const struct check_list *l, const struct check_exec *x, const char *build,
              struct check_report *ret) {
        uint64_t t0 = now_ms();
        struct check_report r = {
                .build = xstrdup(build ? build : ""),
                .where = xstrdup(x->where),
                .v = xcalloc(l->n + 1, sizeof(struct check_result)),
                .n = l->n,
        };
        char marker[33];
        random_marker(marker);
        _cleanup_strbuf_ struct strbuf script = STRBUF_INIT;
        strbuf_addf(&script, "K=%s\n%s", marker, prelude);
        size_t nrun = 0;
        for (size_t i = 0; i < l->n; i++) {
                const struct check *c = &l->v[i];
                r.v[i].check = c;
                if (c->boot_only && !x->booted) {
                        r.v[i].status = CHECK_SKIPPED;
                        r.v[i].detail = xstrdup("needs a booted guest");
                        continue;
                }
                strbuf_addf(&script, "I=%zu\n(\n", i + 1);
                c->kind->script(c, x->booted, &script);
                strbuf_adds(&script, ") </dev/null\nprintf '\\n%s %s end\\n' \"$K\" \"$I\"\n");
                nrun++;
        }
        _cleanup_free_ char *out = NULL;
        int status = 0;
        if (nrun) {
                int k = x->run(x->userdata, script.buf, CHECK_RUN_TIMEOUT_MS, CHECK_OUTPUT_MAX, &out,
                               &status);
                if (k < 0) {
                        r.elapsed_ms = now_ms() - t0;
                        check_report_done(&r);
                        return k;
                }
        }
        struct acc *acc = xcalloc(l->n + 1, sizeof(*acc));
        if (out)
                parse_output(out, marker, acc, l->n);
        for (size_t i = 0; i < l->n; i++) {
                struct check_result *cr = &r.v[i];
                struct acc *a = &acc[i];
                if (!cr->detail) {
                        if (!a->ended) {
                                _cleanup_free_ char *tail = output_tail(out ? out : "");
                                cr->status = CHECK_FAILED;
                                cr->detail = xasprintf("the check did not finish (exit status %d)%s%s",
                                                       status, *tail ? ": " : "", tail);
                        } else if (a->fail.len) {
                                cr->status = CHECK_FAILED;
                                cr->detail = xstrdup(a->fail.buf);
                        } else if (a->ok.len) {
                                cr->status = CHECK_PASSED;
                                if (a->skip.len)
                                        strbuf_addf(&a->ok, "; not checked: %s", a->skip.buf);
                                cr->detail = xstrdup(a->ok.buf);
                        } else if (a->skip.len) {
                                cr->status = CHECK_SKIPPED;
                                cr->detail = xstrdup(a->skip.buf);
                        } else {
                                cr->status = CHECK_FAILED;
                                cr->detail = xstrdup("the check reported nothing");
                        }
                }
                switch (cr->status) {
                case CHECK_PASSED: r.passed++; break;
                case CHECK_FAILED: r.failed++; break;
                default: r.skipped++; break;
                }
                strbuf_free(&a->ok);
                strbuf_free(&a->fail);
                strbuf_free(&a->skip);
        }
        free(acc);
        r.elapsed_ms = now_ms() - t0;
        *ret = r;
        return 0;
}

void check_report_done(struct check_report *r) {
        for (size_t i = 0; i < r->n; i++)
                free(r->v[i].detail);
        free(r->v);
        if (r->builtin) {
                free(r->builtin->target);
                free(r->builtin);
        }
        free(r->build);
        free(r->where);
        *r = (struct check_report){0};
}

/* ---- the built tree as a target ---------------------------------------------------------------- */

static int tree_run(void *userdata, const char *script, uint64_t timeout_ms, size_t max,
                    char **ret_output, int *ret_status) {
        const struct check_tree *t = userdata;
        int r = mkdir_p(t->scratch_dir, 0755);
        if (r < 0)
                return r;
        _cleanup_free_ char *dir = xasprintf("%s/checks.XXXXXX", t->scratch_dir);
        if (!mkdtemp(dir))
                return -errno;
        _cleanup_free_ char *upper = xasprintf("%s/upper", dir);
        _cleanup_free_ char *work = xasprintf("%s/work", dir);
        _cleanup_free_ char *mnt = xasprintf("%s/root", dir);
        _cleanup_free_ char *spath = xasprintf("%s/script.sh", dir);
        _cleanup_free_ char *opath = xasprintf("%s/output", dir);
        int in = -1, out = -1;
        if ((r = mkdir_p(upper, 0755)) < 0 || (r = mkdir_p(work, 0700)) < 0 ||
            (r = mkdir_p(mnt, 0755)) < 0 ||
            (r = write_file(spath, script, strlen(script), 0600, 0)) < 0)
                goto out;
        in = open(spath, O_RDONLY | O_CLOEXEC);
        out = open(opath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (in < 0 || out < 0) {
                r = -errno;
                goto out;
        }
        char *argv[] = {"/bin/sh", "-s", NULL};
        struct sandbox_opts so = {
                .lower = t->layers, .nlower = t->nlayers, .upper = upper, .work = work,
                .mountpoint = mnt, .mode = SANDBOX_CHROOT, .network = false,
                .hostname = t->hostname, .argv = argv, .cwd = "/", .stdin_fd = in,
                .stdout_fd = out, .stderr_fd = -1, .timeout_ms = timeout_ms,
        };
        struct sandbox_result res = {0};
        r = sandbox_run(&so, &res);
        if (r < 0)
                goto out;
        close(out);
        out = -1;
        char *text = NULL;
        size_t len = 0;
        r = read_file(opath, max, &text, &len);
        if (r == -E2BIG) {
                /* Keep what fits: results of later checks are reported missing. */
                _cleanup_close_ int fd = open(opath, O_RDONLY | O_CLOEXEC);
                text = xmalloc(max + 1);
                ssize_t n = fd >= 0 ? read(fd, text, max) : -1;
                text[n > 0 ? n : 0] = 0;
                r = 0;
        }
        if (r < 0)
                goto out;
        *ret_output = text;
        *ret_status = res.timed_out || res.signal ? -1 : res.exit_code;
out:
        if (in >= 0)
                close(in);
        if (out >= 0)
                close(out);
        rm_rf(dir);
        return r;
}

void check_exec_tree(struct check_exec *x, const struct check_tree *t) {
        *x = (struct check_exec){
                .where = "tree",
                .booted = false,
                .userdata = (void *)t,
                .run = tree_run,
        };
}

int check_run_finished_tree(const struct check_list *l, const char *work_dir, const struct spec_build *b,
                            struct check_report *ret, char **ret_error) {
        struct build_options bo = {.work_dir = work_dir};
        char **layers = NULL;
        size_t n = 0;
        int r = build_layers(&bo, b, &layers, &n);
        if (r < 0) {
                *ret_error = xasprintf("%s has no finished tree in %s (run kiln build first)", b->name, work_dir);
                return -ENOENT;
        }
        for (size_t i = 0; i < n && r == 0; i++) {
                struct stat st;
                if (stat(layers[i], &st) < 0) {
                        r = -errno;
                        *ret_error = xasprintf("a layer of %s is no longer in the cache (%s); run kiln build again",
                                               b->name, layers[i]);
                }
        }
        if (r == 0) {
                _cleanup_free_ char *dir = build_dir(&bo, b);
                _cleanup_free_ char *scratch = xasprintf("%s/run", dir);
                struct check_tree tree = {.layers = (const char *const *)layers, .nlayers = n,
                                          .scratch_dir = scratch};
                struct check_exec x;
                check_exec_tree(&x, &tree);
                r = check_run(l, &x, b->name, ret);
                if (r < 0)
                        *ret_error = xasprintf("%s: cannot run the checks in the tree: %s", b->name, strerror(-r));
        }
        for (size_t i = 0; i < n; i++)
                free(layers[i]);
        free(layers);
        return r;
}
