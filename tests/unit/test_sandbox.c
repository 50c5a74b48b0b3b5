/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for os/sandbox.c. They need root (skipped otherwise) and build a
 * tiny root tree from busybox (/bin/busybox, busybox-static) under a
 * temporary directory in /var/tmp; every test works on its own copies.
 * Nothing waits with a fixed sleep: conditions are polled with deadlines.
 */
#include "harness.h"

#include "os/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>

#define BUSYBOX "/bin/busybox"

static char fx_dir[64]; /* /var/tmp/kiln-sandbox-test.XXXXXX */
static char *fx_base;   /* the busybox tree */

static void fx_cleanup(void) {
        if (fx_dir[0]) {
                char *cmd = xasprintf("rm -rf '%s'", fx_dir);
                if (system(cmd) != 0)
                        fprintf(stderr, "cannot remove %s\n", fx_dir);
                free(cmd);
        }
        free(fx_base);
}

static bool can_run(void) {
        if (geteuid() != 0) {
                printf("    skipped: not root\n");
                return false;
        }
        return true;
}

/* Test setup must not fail quietly: abort when a file cannot be written. */
static void put_file(const char *path, const char *content, mode_t mode) {
        int r = write_file(path, content, strlen(content), mode, 0);
        if (r < 0) {
                fprintf(stderr, "cannot write %s: %s\n", path, strerror(-r));
                abort();
        }
}

static void mkdirs(const char *root, const char *const *dirs, size_t n) {
        for (size_t i = 0; i < n; i++) {
                char *p = xasprintf("%s/%s", root, dirs[i]);
                if (mkdir(p, 0755) < 0 && errno != EEXIST) {
                        fprintf(stderr, "mkdir %s: %m\n", p);
                        abort();
                }
                free(p);
        }
}

static void sh(const char *fmt, ...) _printf_(1, 2);
static void sh(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *cmd = xvasprintf(fmt, ap);
        va_end(ap);
        if (system(cmd) != 0) {
                fprintf(stderr, "failed: %s\n", cmd);
                abort();
        }
        free(cmd);
}

/* A tree with /bin/busybox and one symlink per applet; `full` adds the usual
 * top-level directories, /etc/hostname and /etc/marker. It has no
 * /etc/resolv.conf and no /usr/sbin/policy-rc.d. */
static void make_tree(const char *root, bool full) {
        static const char *const dirs[] = {"", "bin"};
        static const char *const more[] = {"etc", "usr", "usr/sbin", "proc",
                                           "sys", "dev", "run", "tmp"};
        mkdirs(root, dirs, ARRAY_SIZE(dirs));
        sh("cp %s '%s/bin/busybox'", BUSYBOX, root);
        FILE *list = popen(BUSYBOX " --list", "r");
        char *bin = xasprintf("%s/bin", root);
        int bindir = open(bin, O_PATH | O_DIRECTORY | O_CLOEXEC);
        char name[256];
        while (list && bindir >= 0 && fgets(name, sizeof name, list)) {
                name[strcspn(name, "\n")] = 0;
                if (name[0] && !streq(name, "busybox"))
                        (void)symlinkat("busybox", bindir, name);
        }
        if (list)
                pclose(list);
        close(bindir);
        free(bin);
        if (!full)
                return;
        mkdirs(root, more, ARRAY_SIZE(more));
        char *p = xasprintf("%s/etc/hostname", root);
        put_file(p, "base\n", 0644);
        free(p);
        p = xasprintf("%s/etc/marker", root);
        put_file(p, "marker\n", 0644);
        free(p);
}

/* A fresh directory for one test: <fx_dir>/<name>. */
static char *test_dir(const char *name) {
        if (!fx_dir[0]) {
                strcpy(fx_dir, "/var/tmp/kiln-sandbox-test.XXXXXX");
                if (!mkdtemp(fx_dir)) {
                        fprintf(stderr, "mkdtemp: %m\n");
                        abort();
                }
                atexit(fx_cleanup);
                fx_base = xasprintf("%s/base", fx_dir);
                make_tree(fx_base, true);
        }
        char *d = xasprintf("%s/%s", fx_dir, name);
        static const char *const sub[] = {"", "upper", "work", "mnt"};
        mkdirs(d, sub, ARRAY_SIZE(sub));
        return d;
}

static char *pathf(const char *fmt, ...) _printf_(1, 2);
static char *pathf(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *p = xvasprintf(fmt, ap);
        va_end(ap);
        return p;
}

/* A private copy of the base tree at <dir>/tree. */
static char *copy_base(const char *dir) {
        char *t = pathf("%s/tree", dir);
        sh("cp -a '%s' '%s'", fx_base, t);
        return t;
}

/* Options for a tree used directly (no lower layers). */
static struct sandbox_opts opts_direct(const char *tree, const char *mnt) {
        return (struct sandbox_opts){.upper = tree, .mountpoint = mnt, .mode = SANDBOX_CHROOT,
                                     .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
}

/* Options for an overlay of `lower` with <dir>/upper, <dir>/work, <dir>/mnt. */
struct layout {
        char *upper, *work, *mnt;
};

static struct layout layout_of(const char *dir) {
        return (struct layout){pathf("%s/upper", dir), pathf("%s/work", dir), pathf("%s/mnt", dir)};
}

static void layout_free(struct layout *l) {
        free(l->upper);
        free(l->work);
        free(l->mnt);
}

static struct sandbox_opts opts_overlay(const char *const *lower, size_t n,
                                        const struct layout *l) {
        struct sandbox_opts o = opts_direct(l->upper, l->mnt);
        o.lower = lower;
        o.nlower = n;
        o.work = l->work;
        return o;
}

/* Runs argv with stdout and stderr captured; *ret_out is owned by the
 * caller (NULL when the run failed). */
static int run_argv(struct sandbox_opts o, char *const *argv, struct sandbox_result *res,
                    char **ret_out) {
        int fd = memfd_create("out", MFD_CLOEXEC);
        o.argv = argv;
        o.stdout_fd = fd;
        *res = (struct sandbox_result){0};
        int r = sandbox_run(&o, res);
        *ret_out = NULL;
        if (r == 0) {
                off_t n = lseek(fd, 0, SEEK_END);
                char *buf = xmalloc((size_t)n + 1);
                ssize_t got = pread(fd, buf, (size_t)n, 0);
                buf[got > 0 ? got : 0] = 0;
                *ret_out = buf;
        }
        close(fd);
        return r;
}

static int run_sh(struct sandbox_opts o, const char *script, struct sandbox_result *res,
                  char **ret_out) {
        char *argv[] = {"sh", "-c", (char *)script, NULL};
        return run_argv(o, argv, res, ret_out);
}

static char *slurp(const char *path) {
        char *buf = NULL;
        size_t len;
        return read_file(path, 1 << 20, &buf, &len) == 0 ? buf : NULL;
}

static bool exists(const char *path) {
        struct stat st;
        return lstat(path, &st) == 0;
}

static bool existsf(const char *fmt, ...) _printf_(1, 2);
static bool existsf(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *p = xvasprintf(fmt, ap);
        va_end(ap);
        bool e = exists(p);
        free(p);
        return e;
}

/* A sleep duration no other test run uses, so that scanning /proc for
 * "sleep SECS" finds only this run's sleeps. */
static char *unique_secs(int k) { return pathf("%d", 1000000 + (int)getpid() * 10 + k); }

/* Number of processes whose command line is exactly argv[0..n). */
static int count_procs(const char *const *argv, size_t n) {
        char want[256];
        size_t wlen = 0;
        for (size_t i = 0; i < n; i++) {
                size_t l = strlen(argv[i]) + 1;
                memcpy(want + wlen, argv[i], l);
                wlen += l;
        }
        int count = 0;
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
                if (e->d_name[0] < '0' || e->d_name[0] > '9')
                        continue;
                char *p = pathf("/proc/%s/cmdline", e->d_name);
                char *buf = NULL;
                size_t len = 0;
                if (read_file(p, 1 << 16, &buf, &len) == 0 && len == wlen &&
                    memcmp(buf, want, wlen) == 0)
                        count++;
                free(buf);
                free(p);
        }
        if (d)
                closedir(d);
        return count;
}

/* Number of processes whose mount table mentions path. */
static int count_mount_views(const char *path) {
        int count = 0;
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
                if (e->d_name[0] < '0' || e->d_name[0] > '9')
                        continue;
                char *p = pathf("/proc/%s/mountinfo", e->d_name);
                char *buf = NULL;
                size_t len;
                if (read_file(p, 1 << 22, &buf, &len) == 0 && strstr(buf, path))
                        count++;
                free(buf);
                free(p);
        }
        if (d)
                closedir(d);
        return count;
}

static bool own_mounts_mention(const char *path) {
        char *buf = slurp("/proc/self/mountinfo");
        bool found = buf && strstr(buf, path);
        free(buf);
        return found;
}

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void nap(void) { nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL); }

#define POLL_UNTIL(cond, ms)                                                   \
        ({                                                                     \
                uint64_t _end = now_ms() + (ms);                               \
                bool _ok;                                                      \
                while (!(_ok = (cond)) && now_ms() < _end)                     \
                        nap();                                                 \
                _ok;                                                           \
        })

/* ---- the tests --------------------------------------------------------- */

TEST(sandbox_probe_succeeds_as_root) {
        if (!can_run())
                return;
        const char *why = NULL;
        int r = sandbox_probe(&why);
        if (r < 0)
                printf("    probe: %s (%s)\n", why, strerror(-r));
        CHECK_INT(r, ==, 0);
}

TEST(sandbox_chroot_writes_into_direct_tree) {
        if (!can_run())
                return;
        char *dir = test_dir("direct");
        char *tree = copy_base(dir), *mnt = pathf("%s/mnt", dir);
        struct sandbox_result res;
        char *out = NULL;
        CHECK_INT(run_sh(opts_direct(tree, mnt), "echo hi > /out; echo done", &res, &out), ==, 0);
        CHECK_STREQ(out, "done\n");
        CHECK_INT(res.exit_code, ==, 0);
        CHECK_INT(res.signal, ==, 0);
        CHECK(!res.timed_out);
        char *f = pathf("%s/out", tree);
        char *content = slurp(f);
        CHECK_STREQ(content, "hi\n");
        /* placeholders created directly in the tree are gone again */
        CHECK(!existsf("%s/etc/resolv.conf", tree));
        CHECK(!existsf("%s/usr/sbin/policy-rc.d", tree));
        CHECK(!own_mounts_mention(mnt));
        free(content);
        free(f);
        free(out);
        free(tree);
        free(mnt);
        free(dir);
}

TEST(sandbox_removes_mount_points_it_created) {
        if (!can_run())
                return;
        char *dir = test_dir("bare");
        char *tree = pathf("%s/tree", dir), *mnt = pathf("%s/mnt", dir);
        make_tree(tree, false); /* only /bin */
        struct sandbox_result res;
        char *out = NULL;
        CHECK_INT(run_sh(opts_direct(tree, mnt),
                         "test -e /proc/self/status && test -c /dev/null && test -d /sys/class "
                         "&& test -d /run && test -d /tmp && echo ok",
                         &res, &out),
                  ==, 0);
        CHECK_STREQ(out, "ok\n");
        DIR *d = opendir(tree);
        struct dirent *e;
        int others = 0;
        while (d && (e = readdir(d)))
                if (!streq(e->d_name, ".") && !streq(e->d_name, "..") && !streq(e->d_name, "bin")) {
                        printf("    left behind: %s\n", e->d_name);
                        others++;
                }
        if (d)
                closedir(d);
        CHECK_INT(others, ==, 0);
        free(out);
        free(tree);
        free(mnt);
        free(dir);
}

TEST(sandbox_overlay_records_changes_in_upper) {
        if (!can_run())
                return;
        char *dir = test_dir("overlay");
        struct layout l = layout_of(dir);
        const char *lower[] = {fx_base};
        struct sandbox_result res;
        char *out = NULL;
        CHECK_INT(run_sh(opts_overlay(lower, 1, &l),
                         "echo new > /etc/new && rm /etc/hostname && cat /etc/marker", &res, &out),
                  ==, 0);
        CHECK_STREQ(out, "marker\n");
        CHECK_INT(res.exit_code, ==, 0);
        char *p = pathf("%s/etc/new", l.upper);
        char *content = slurp(p);
        CHECK_STREQ(content, "new\n");
        free(content);
        free(p);
        struct stat st;
        p = pathf("%s/etc/hostname", l.upper);
        CHECK(lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
        free(p);
        p = pathf("%s/etc/hostname", fx_base);
        content = slurp(p);
        CHECK_STREQ(content, "base\n"); /* the lower layer is untouched */
        free(content);
        free(p);
        CHECK(!existsf("%s/etc/new", fx_base));
        free(out);
        layout_free(&l);
        free(dir);
}

TEST(sandbox_placeholders_do_not_leak_into_upper) {
        if (!can_run())
                return;
        char *dir = test_dir("placeholders");
        struct layout l = layout_of(dir);
        char *host_resolv = slurp("/etc/resolv.conf");
        const char *lower[] = {fx_base};
        struct sandbox_result res;
        char *out = NULL;
        CHECK_INT(run_sh(opts_overlay(lower, 1, &l),
                         "/usr/sbin/policy-rc.d; echo rc=$?; "
                         "(echo x > /usr/sbin/policy-rc.d) 2>/dev/null || echo ro; "
                         "cat /etc/resolv.conf",
                         &res, &out),
                  ==, 0);
        char *want = pathf("rc=101\nro\n%s", host_resolv ? host_resolv : "");
        CHECK_STREQ(out, want);
        CHECK(!existsf("%s/etc/resolv.conf", l.upper));
        CHECK(!existsf("%s/usr/sbin/policy-rc.d", l.upper));
        free(want);
        free(out);
        layout_free(&l);

        /* a tree whose resolv.conf is a symlink into /run (systemd-resolved,
         * resolvconf) gets the host's file there, in the tmpfs; one with its
         * own resolv.conf sees the host's over it and keeps its own */
        char *dir2 = pathf("%s/placeholders-link", fx_dir);
        static const char *const sub[] = {"", "top", "top/etc", "upper", "work", "mnt"};
        mkdirs(dir2, sub, ARRAY_SIZE(sub));
        char *link = pathf("%s/top/etc/resolv.conf", dir2);
        CHECK(symlink("../run/resolvconf/resolv.conf", link) == 0);
        l = layout_of(dir2);
        char *top = pathf("%s/top", dir2);
        const char *lower2[] = {top, fx_base};
        CHECK_INT(run_sh(opts_overlay(lower2, 2, &l), "cat /etc/resolv.conf", &res, &out), ==, 0);
        CHECK_STREQ(out, host_resolv ? host_resolv : "");
        CHECK(!existsf("%s/etc/resolv.conf", l.upper));
        CHECK(!existsf("%s/run", l.upper));
        free(out);
        CHECK(unlink(link) == 0);
        put_file(link, "nameserver 192.0.2.1\n", 0644);
        CHECK_INT(run_sh(opts_overlay(lower2, 2, &l), "cat /etc/resolv.conf", &res, &out), ==, 0);
        CHECK_STREQ(out, host_resolv ? host_resolv : "");
        CHECK(!existsf("%s/etc/resolv.conf", l.upper));
        char *mine = slurp(link);
        CHECK_STREQ(mine, "nameserver 192.0.2.1\n");
        free(mine);
        free(out);
        free(top);
        free(link);
        layout_free(&l);
        free(dir2);
        free(host_resolv);
        free(dir);
}

TEST(sandbox_has_its_own_pid_namespace_and_proc) {
        if (!can_run())
                return;
        char *dir = test_dir("pidns");
        struct layout l = layout_of(dir);
        const char *lower[] = {fx_base};
        struct sandbox_result res;
        char *out = NULL;
        CHECK_INT(run_sh(opts_overlay(lower, 1, &l),
                         "echo $$; cat /proc/1/comm; readlink /proc/self >/dev/null && echo self; "
                         "ps -o pid,comm >/tmp/ps; grep -c . /tmp/ps",
                         &res, &out),
                  ==, 0);
        /* ps lists init, sh and itself (and its header line): nothing of the
         * host. (Not `ps | grep -c .`: whether grep had been forked yet
         * when ps read /proc depended on the scheduler, so the count was 4
         * or 5 under load.) */
        CHECK_STREQ(out, "2\nkiln-init\nself\n4\n");
        free(out);
        layout_free(&l);
        free(dir);
}

TEST(sandbox_dev_and_tmpfs) {
        if (!can_run())
                return;
        char *dir = test_dir("dev");
        char *tree = copy_base(dir), *mnt = pathf("%s/mnt", dir);
        struct sandbox_result res;
        char *out = NULL;
        CHECK_INT(run_sh(opts_direct(tree, mnt),
                         "echo x > /dev/null && head -c 5 /dev/zero | wc -c && "
                         "test -c /dev/urandom && test -L /dev/ptmx && test -d /dev/pts && "
                         "test -L /dev/fd && stat -c %a /tmp /dev/shm && touch /tmp/t /run/r && "
                         "{ (touch /sys/x) 2>/dev/null || echo sys-ro; } && "
                         /* kernel/hostname is per UTS namespace: harmless
                          * should the check fail */
                         "{ (echo x > /proc/sys/kernel/hostname) 2>/dev/null "
                         "|| echo proc-sys-ro; }",
                         &res, &out),
                  ==, 0);
        CHECK_STREQ(out, "5\n1777\n1777\nsys-ro\nproc-sys-ro\n");
        CHECK(!existsf("%s/tmp/t", tree));
        CHECK(!existsf("%s/run/r", tree));
        free(out);
        free(tree);
        free(mnt);
        free(dir);
}

static int count_lines(const char *s) {
        int n = 0;
        for (; s && *s; s++)
                n += *s == '\n';
        return n;
}

TEST(sandbox_network_namespace) {
        if (!can_run())
                return;
        char *dir = test_dir("net");
        struct layout l = layout_of(dir);
        const char *lower[] = {fx_base};
        struct sandbox_opts o = opts_overlay(lower, 1, &l);
        struct sandbox_result res;
        char *out = NULL;
        CHECK_INT(run_sh(o, "cat /proc/net/dev", &res, &out), ==, 0);
        CHECK_INT(count_lines(out), ==, 3); /* two header lines and lo */
        CHECK(out && strstr(out, "lo:"));
        free(out);
        /* lo is up: IFF_UP | IFF_LOOPBACK (sysfs of the new namespace) */
        CHECK_INT(run_sh(o, "cat /sys/class/net/lo/flags", &res, &out), ==, 0);
        CHECK_STREQ(out, "0x9\n");
        free(out);
        o.network = true;
        CHECK_INT(run_sh(o, "cat /proc/net/dev", &res, &out), ==, 0);
        char *host = slurp("/proc/net/dev");
        CHECK_INT(count_lines(out), ==, count_lines(host));
        free(host);
        free(out);
        layout_free(&l);
        free(dir);
}

TEST(sandbox_reports_exit_codes_and_signals) {
        if (!can_run())
                return;
        char *dir = test_dir("status");
        struct layout l = layout_of(dir);
        const char *lower[] = {fx_base};
        struct sandbox_result res;
        char *out = NULL;
        CHECK_INT(run_sh(opts_overlay(lower, 1, &l), "exit 7", &res, &out), ==, 0);
        CHECK_INT(res.exit_code, ==, 7);
        CHECK_INT(res.signal, ==, 0);
        CHECK(!res.timed_out);
        free(out);
        CHECK_INT(run_sh(opts_overlay(lower, 1, &l), "kill -TERM $$", &res, &out), ==, 0);
        CHECK_INT(res.signal, ==, SIGTERM);
        CHECK_INT(res.exit_code, ==, 128 + SIGTERM);
        free(out);
        layout_free(&l);
        free(dir);
}

TEST(sandbox_timeout_kills_everything) {
        if (!can_run())
                return;
        char *dir = test_dir("timeout");
        struct layout l = layout_of(dir);
        const char *lower[] = {fx_base};
        char *secs = unique_secs(1);
        const char *const sleeper[] = {"sleep", secs, NULL};
        struct sandbox_opts o = opts_overlay(lower, 1, &l);
        o.timeout_ms = 300;
        struct sandbox_result res;
        char *out = NULL;
        uint64_t t0 = now_ms();
        CHECK_INT(run_argv(o, (char *const *)sleeper, &res, &out), ==, 0);
        uint64_t took = now_ms() - t0;
        CHECK(res.timed_out);
        CHECK_INT(res.signal, ==, SIGKILL);
        CHECK_INT(res.elapsed_ms, >=, 300);
        CHECK_INT(took, <, 5000);
        /* sandbox_run returns only once the namespace is empty */
        CHECK_INT(count_procs(sleeper, 2), ==, 0);
        CHECK_INT(count_mount_views(l.mnt), ==, 0);
        CHECK(!existsf("%s/etc/resolv.conf", l.upper));
        free(out);
        free(secs);
        layout_free(&l);
        free(dir);
}

TEST(sandbox_kills_background_processes) {
        if (!can_run())
                return;
        char *dir = test_dir("background");
        struct layout l = layout_of(dir);
        const char *lower[] = {fx_base};
        char *secs = unique_secs(2);
        const char *const sleeper[] = {"sleep", secs, NULL};
        char *script = pathf("sleep %s & echo started; exit 0", secs);
        struct sandbox_result res;
        char *out = NULL;
        CHECK_INT(run_sh(opts_overlay(lower, 1, &l), script, &res, &out), ==, 0);
        CHECK_STREQ(out, "started\n");
        CHECK_INT(res.exit_code, ==, 0);
        CHECK_INT(count_procs(sleeper, 2), ==, 0);
        free(out);
        free(script);
        free(secs);
        layout_free(&l);
        free(dir);
}

struct bg_run {
        struct sandbox_opts o;
        const char *script;
        int r;
        struct sandbox_result res;
        char *out;
};

static void *bg_run_main(void *arg) {
        struct bg_run *b = arg;
        b->r = run_sh(b->o, b->script, &b->res, &b->out);
        return NULL;
}

TEST(sandbox_mounts_never_appear_in_caller_namespace) {
        if (!can_run())
                return;
        char *dir = test_dir("mountns");
        char *tree = copy_base(dir), *mnt = pathf("%s/mnt", dir);
        char *started = pathf("%s/started", tree), *go = pathf("%s/go", tree);
        struct bg_run b = {.o = opts_direct(tree, mnt),
                           .script = "touch /started; while [ ! -e /go ]; do sleep 0.02; done"};
        pthread_t th;
        CHECK(pthread_create(&th, NULL, bg_run_main, &b) == 0);
        CHECK(POLL_UNTIL(exists(started), 10000));
        /* running: the sandbox's processes see the tree mounted, we do not */
        CHECK(!own_mounts_mention(mnt));
        CHECK_INT(count_mount_views(mnt), >, 0);
        put_file(go, "", 0644);
        pthread_join(th, NULL);
        CHECK_INT(b.r, ==, 0);
        CHECK_INT(b.res.exit_code, ==, 0);
        CHECK_INT(count_mount_views(mnt), ==, 0);
        free(b.out);
        free(started);
        free(go);
        free(tree);
        free(mnt);
        free(dir);
}

TEST(sandbox_killed_caller_leaves_nothing) {
        if (!can_run())
                return;
        char *dir = test_dir("killed");
        char *tree = copy_base(dir), *mnt = pathf("%s/mnt", dir);
        char *secs = unique_secs(3);
        const char *const sleeper[] = {"sleep", secs, NULL};
        pid_t child = fork();
        if (child == 0) {
                struct sandbox_opts o = opts_direct(tree, mnt);
                o.argv = (char *const *)sleeper;
                struct sandbox_result res;
                _exit(sandbox_run(&o, &res) == 0 ? 0 : 1);
        }
        CHECK(child > 0);
        CHECK(POLL_UNTIL(count_procs(sleeper, 2) == 1, 10000));
        CHECK(kill(child, SIGKILL) == 0);
        int status;
        CHECK(waitpid(child, &status, 0) == child && WIFSIGNALED(status));
        CHECK(POLL_UNTIL(count_procs(sleeper, 2) == 0 && count_mount_views(mnt) == 0, 10000));
        /* the helper cleaned up before it exited */
        CHECK(!existsf("%s/etc/resolv.conf", tree));
        CHECK(!existsf("%s/usr/sbin/policy-rc.d", tree));
        free(secs);
        free(tree);
        free(mnt);
        free(dir);
}

TEST(sandbox_host_mode_and_binds) {
        if (!can_run())
                return;
        char *dir = test_dir("host");
        struct layout l = layout_of(dir);
        const char *lower[] = {fx_base};
        struct sandbox_opts o = opts_overlay(lower, 1, &l);
        o.mode = SANDBOX_HOST;
        char *marker = pathf("%s/etc/marker", l.mnt);
        char *argv[] = {"cat", marker, NULL};
        struct sandbox_result res;
        char *out = NULL;
        CHECK_INT(run_argv(o, argv, &res, &out), ==, 0);
        CHECK_STREQ(out, "marker\n");
        CHECK_INT(res.exit_code, ==, 0);
        free(out);
        /* the default working directory in host mode is the tree */
        CHECK_INT(run_sh(o, "cat etc/marker", &res, &out), ==, 0);
        CHECK_STREQ(out, "marker\n");
        free(out);

        char *script = pathf("%s/script", dir), *data = pathf("%s/data", dir);
        put_file(script, "#!/bin/sh\necho from-script\n", 0755);
        CHECK(mkdir(data, 0755) == 0);
        struct sandbox_bind binds[] = {{script, "/run/kiln/script", true},
                                       {data, "/tmp/data", false}};
        o = opts_overlay(lower, 1, &l);
        o.binds = binds;
        o.nbinds = ARRAY_SIZE(binds);
        CHECK_INT(run_sh(o,
                         "/run/kiln/script; (echo x > /run/kiln/script) 2>/dev/null || echo ro; "
                         "echo hello > /tmp/data/file",
                         &res, &out),
                  ==, 0);
        CHECK_STREQ(out, "from-script\nro\n");
        char *file = pathf("%s/file", data);
        char *content = slurp(file);
        CHECK_STREQ(content, "hello\n");
        char *s = slurp(script);
        CHECK_STREQ(s, "#!/bin/sh\necho from-script\n");
        free(s);
        CHECK(!existsf("%s/run", l.upper));
        CHECK(!existsf("%s/tmp", l.upper));
        free(content);
        free(file);
        free(out);
        free(script);
        free(data);
        free(marker);
        layout_free(&l);
        free(dir);
}

TEST(sandbox_hostname_and_setup_errors) {
        if (!can_run())
                return;
        char *dir = test_dir("errors");
        struct layout l = layout_of(dir);
        const char *lower[] = {fx_base};
        struct sandbox_opts o = opts_overlay(lower, 1, &l);
        struct sandbox_result res;
        char *out = NULL;
        o.hostname = "kiln-test";
        CHECK_INT(run_sh(o, "hostname", &res, &out), ==, 0);
        CHECK_STREQ(out, "kiln-test\n");
        free(out);
        o.hostname = NULL;
        CHECK_INT(run_sh(o, "hostname", &res, &out), ==, 0);
        CHECK_STREQ(out, "kiln\n");
        free(out);

        /* a program that cannot be found is a setup error, not exit 127 */
        char *missing[] = {"no-such-program", NULL};
        char *missing_abs[] = {"/no/such/program", NULL};
        CHECK_INT(run_argv(o, missing, &res, &out), ==, -ENOENT);
        CHECK(out == NULL);
        CHECK_INT(run_argv(o, missing_abs, &res, &out), ==, -ENOENT);
        char *cwd_argv[] = {"true", NULL};
        o.cwd = "/no/such/dir";
        CHECK_INT(run_argv(o, cwd_argv, &res, &out), ==, -ENOENT);
        o.cwd = NULL;

        struct sandbox_bind bad = {"/etc/hostname", "/etc/x", true};
        o.binds = &bad;
        o.nbinds = 1;
        CHECK_INT(run_argv(o, cwd_argv, &res, &out), ==, -EINVAL);
        bad.tree_path = "/run/../etc/x";
        CHECK_INT(run_argv(o, cwd_argv, &res, &out), ==, -EINVAL);
        bad.tree_path = "/run/x";
        bad.host_path = "/no/such/file";
        CHECK_INT(run_argv(o, cwd_argv, &res, &out), ==, -ENOENT);
        o.binds = NULL;
        o.nbinds = 0;

        const char *no_layer[] = {"/no/such/layer"};
        struct sandbox_opts o2 = opts_overlay(no_layer, 1, &l);
        CHECK_INT(run_argv(o2, cwd_argv, &res, &out), ==, -ENOENT);
        o2.nlower = SANDBOX_MAX_LAYERS + 1;
        CHECK_INT(run_argv(o2, cwd_argv, &res, &out), ==, -E2BIG);
        o.hostname = "";
        CHECK_INT(run_argv(o, cwd_argv, &res, &out), ==, -EINVAL);

        /* failed runs leave nothing either */
        CHECK(!existsf("%s/etc/resolv.conf", l.upper));
        CHECK(!existsf("%s/usr/sbin/policy-rc.d", l.upper));
        CHECK_INT(count_mount_views(l.mnt), ==, 0);
        layout_free(&l);
        free(dir);
}

TEST(sandbox_many_layers) {
        if (!can_run())
                return;
        /* SANDBOX_MAX_LAYERS layers with long paths: the overlay options
         * must still fit in a page */
        char *dir = test_dir("layers-with-a-rather-long-directory-name-to-make-the-paths-long");
        const char *lower[SANDBOX_MAX_LAYERS];
        char *paths[SANDBOX_MAX_LAYERS];
        for (size_t i = 0; i < SANDBOX_MAX_LAYERS - 1; i++) {
                paths[i] = pathf("%s/layer-%03zu-0123456789abcdef0123456789abcdef", dir, i);
                CHECK(mkdir(paths[i], 0755) == 0);
                char *f = pathf("%s/f%zu", paths[i], i);
                put_file(f, "x", 0644);
                free(f);
                lower[i] = paths[i];
        }
        lower[SANDBOX_MAX_LAYERS - 1] = fx_base;
        struct layout l = layout_of(dir);
        struct sandbox_result res;
        char *out = NULL;
        CHECK_INT(run_sh(opts_overlay(lower, SANDBOX_MAX_LAYERS, &l), "ls / | grep -c '^f'", &res,
                         &out),
                  ==, 0);
        CHECK_STREQ(out, "127\n");
        free(out);
        for (size_t i = 0; i < SANDBOX_MAX_LAYERS - 1; i++)
                free(paths[i]);
        layout_free(&l);
        free(dir);
}

static int memfd_with(const char *text) {
        int fd = memfd_create("pass", MFD_CLOEXEC);
        if (fd >= 0 && (write(fd, text, strlen(text)) != (ssize_t)strlen(text) || lseek(fd, 0, SEEK_SET) != 0)) {
                close(fd);
                fd = -1;
        }
        return fd;
}

TEST(sandbox_passes_fds_as_3_and_4) {
        if (!can_run())
                return;
        char *dir = test_dir("passfds");
        struct layout l = layout_of(dir);
        const char *lower[] = {fx_base};
        /* the second first: the command gets them in the order given */
        int b0 = memfd_with("second\n"), a0 = memfd_with("echo from-script\n");
        CHECK(a0 >= 0 && b0 >= 0);
        int pass[] = {a0, b0};
        struct sandbox_opts o = opts_overlay(lower, 1, &l);
        o.pass_fds = pass;
        o.npass_fds = 2;
        struct sandbox_result res;
        char *out = NULL;
        /* nothing else is open in the command */
        CHECK_INT(run_sh(o, "sh /dev/fd/3; cat /dev/fd/4; test -e /proc/$$/fd/4 && test ! -e /proc/$$/fd/5 && echo none-else",
                         &res, &out),
                  ==, 0);
        CHECK_STREQ(out, "from-script\nsecond\nnone-else\n");
        free(out);
        /* too many, or a bad fd: refused */
        int many[SANDBOX_MAX_PASS_FDS + 1] = {a0, a0, a0, a0, a0};
        o.pass_fds = many;
        o.npass_fds = SANDBOX_MAX_PASS_FDS + 1;
        CHECK_INT(run_sh(o, "true", &res, &out), ==, -EINVAL);
        int bad[] = {-1};
        o.pass_fds = bad;
        o.npass_fds = 1;
        CHECK_INT(run_sh(o, "true", &res, &out), ==, -EINVAL);
        close(a0);
        close(b0);
        layout_free(&l);
        free(dir);
}

TEST(sandbox_runs_concurrently) {
        if (!can_run())
                return;
        char *dirs[2] = {test_dir("concurrent-a"), test_dir("concurrent-b")};
        char *trees[2], *mnts[2];
        struct bg_run b[2];
        pthread_t th[2];
        static const char *const scripts[] = {"echo A > /out; echo a", "echo B > /out; echo b"};
        for (int i = 0; i < 2; i++) {
                trees[i] = copy_base(dirs[i]);
                mnts[i] = pathf("%s/mnt", dirs[i]);
                b[i] = (struct bg_run){.o = opts_direct(trees[i], mnts[i]), .script = scripts[i]};
        }
        for (int i = 0; i < 2; i++)
                CHECK(pthread_create(&th[i], NULL, bg_run_main, &b[i]) == 0);
        for (int i = 0; i < 2; i++)
                pthread_join(th[i], NULL);
        for (int i = 0; i < 2; i++) {
                CHECK_INT(b[i].r, ==, 0);
                CHECK_STREQ(b[i].out, i ? "b\n" : "a\n");
                char *f = pathf("%s/out", trees[i]);
                char *c = slurp(f);
                CHECK_STREQ(c, i ? "B\n" : "A\n");
                free(c);
                free(f);
                free(b[i].out);
                free(trees[i]);
                free(mnts[i]);
                free(dirs[i]);
        }
}
