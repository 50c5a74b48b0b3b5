/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for src/os/proc.c (spawning, waiting, stopping) and src/os/fs.c
 * (rm_rf's guards, listing, sparse copies). Real programs (sh, env, sleep,
 * cat) run; nothing waits with a fixed sleep: every wait is for a condition
 * (a pipe's data, an exit) with a deadline. Tests that need root (a PID
 * namespace) say "skipped" otherwise. rm_rf at a mount point is tested in
 * test_cache.c (rm_rf_stays_on_one_file_system), where it was first used.
 */
#include "harness.h"

#include "os/fs.h"
#include "os/proc.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static char *envp_min[] = {"PATH=/usr/bin:/bin", NULL};

static uint64_t ms_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Reads fd to EOF (at most 64 KiB); owned result. */
static char *read_all(int fd) {
        struct strbuf_like {
                char *buf;
                size_t len;
        } s = {xmalloc(65536), 0};
        ssize_t n;
        while (s.len < 65535 && ((n = read(fd, s.buf + s.len, 65535 - s.len)) > 0 || (n < 0 && errno == EINTR)))
                if (n > 0)
                        s.len += (size_t)n;
        s.buf[s.len] = 0;
        return s.buf;
}

/* Reads one line (without '\n') from fd, waiting for it up to 10 s. */
static char *read_line(int fd) {
        char *line = xcalloc(1, 256);
        size_t n = 0;
        uint64_t deadline = ms_now() + 10000;
        while (n < 255 && ms_now() < deadline) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (poll(&p, 1, 100) <= 0)
                        continue;
                if (read(fd, line + n, 1) != 1)
                        break;
                if (line[n] == '\n') {
                        line[n] = 0;
                        break;
                }
                n++;
        }
        return line;
}

/* True once pid no longer runs (gone, or a zombie of someone else's),
 * polled up to 10 s. */
static bool wait_gone(pid_t pid) {
        uint64_t deadline = ms_now() + 10000;
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        while (ms_now() < deadline) {
                char *stat = NULL;
                size_t len;
                if (read_file(path, 4096, &stat, &len) < 0)
                        return true;
                const char *paren = strrchr(stat, ')');
                bool zombie = paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
                free(stat);
                if (zombie)
                        return true;
                struct pollfd none;
                (void)poll(&none, 0, 20);
        }
        return false;
}

/* Runs o (stdout: a pipe) to its end; returns what it wrote (owned). */
static char *run_capture(struct proc_opts o, struct proc_status *st) {
        struct proc p = PROC_INIT;
        o.stdout_fd = PROC_PIPE;
        *st = (struct proc_status){.exit_code = -1};
        if (proc_spawn(&o, &p) < 0)
                return xstrdup("(not started)");
        char *out = read_all(p.stdout_fd);
        CHECK_INT(proc_wait(&p, st), ==, 0);
        proc_done(&p);
        return out;
}

/* ---- proc ---------------------------------------------------------------- */

TEST(proc_environment_is_exactly_what_was_passed) {
        setenv("KILN_VAR_PROC_TEST_SECRET", "s3cr3t-value", 1);
        char *argv[] = {"env", NULL};
        char *envp[] = {"PATH=/usr/bin:/bin", "A=1", "B=two words", NULL};
        struct proc p = PROC_INIT;
        struct proc_opts o = {.argv = argv, .envp = envp, .stdin_fd = PROC_NULL,
                              .stderr_fd = PROC_STDOUT};
        struct proc_status st;
        char *out = run_capture(o, &st);
        CHECK_INT(st.exit_code, ==, 0);
        CHECK_STREQ(out, "PATH=/usr/bin:/bin\nA=1\nB=two words\n");
        free(out);
        unsetenv("KILN_VAR_PROC_TEST_SECRET");

        /* no environment given: refused, not kiln's taken instead */
        o.envp = NULL;
        CHECK_INT(proc_spawn(&o, &p), ==, -EINVAL);
        CHECK_INT(p.pid, ==, 0);

        /* proc_env_from_host copies only what is named */
        setenv("KILN_PROC_TEST_KEEP", "kept", 1);
        const char *names[] = {"KILN_PROC_TEST_KEEP", "KILN_PROC_TEST_UNSET", NULL};
        const char *extra[] = {"X=y", NULL};
        unsetenv("KILN_PROC_TEST_UNSET");
        char **env = proc_env_from_host(names, extra);
        CHECK(env[0] && streq(env[0], "KILN_PROC_TEST_KEEP=kept"));
        CHECK(env[1] && streq(env[1], "X=y"));
        CHECK(env[2] == NULL);
        proc_env_free(env);
        unsetenv("KILN_PROC_TEST_KEEP");
}

TEST(proc_reports_exit_status_signal_and_spawn_errors) {
        struct proc_status st;
        char *exit7[] = {"sh", "-c", "exit 7", NULL};
        struct proc_opts o = {.argv = exit7, .envp = envp_min, .stdin_fd = PROC_NULL,
                              .stdout_fd = PROC_NULL, .stderr_fd = PROC_NULL};
        CHECK_INT(proc_run(&o, &st), ==, 0);
        CHECK_INT(st.exit_code, ==, 7);
        CHECK_INT(st.signal, ==, 0);
        CHECK(!st.timed_out && !st.cancelled);

        char *killed[] = {"sh", "-c", "kill -USR1 $$", NULL};
        o.argv = killed;
        CHECK_INT(proc_run(&o, &st), ==, 0);
        CHECK_INT(st.signal, ==, SIGUSR1);
        CHECK_INT(st.exit_code, ==, 128 + SIGUSR1);

        char *missing[] = {"kiln-no-such-program", NULL};
        o.argv = missing;
        CHECK_INT(proc_run(&o, &st), ==, -ENOENT);

        /* the working directory, and one that does not exist */
        char *pwd[] = {"sh", "-c", "pwd", NULL};
        struct proc p = PROC_INIT;
        o.argv = pwd;
        o.cwd = "/usr";
        char *out = run_capture(o, &st);
        CHECK_STREQ(out, "/usr\n");
        free(out);
        o.cwd = "/kiln-no-such-dir";
        CHECK_INT(proc_spawn(&o, &p), ==, -ENOENT);
        CHECK_INT(p.pid, ==, 0);
}

TEST(proc_pipes_for_stdin_and_stdout_with_stderr_merged) {
        char *argv[] = {"sh", "-c", "cat; echo to-stderr >&2", NULL};
        struct proc_opts o = {.argv = argv, .envp = envp_min, .stdin_fd = PROC_PIPE,
                              .stdout_fd = PROC_PIPE, .stderr_fd = PROC_STDOUT};
        struct proc p = PROC_INIT;
        CHECK_INT(proc_spawn(&o, &p), ==, 0);
        CHECK_INT(write_all(p.stdin_fd, "hello\n", 6), ==, 0);
        close(p.stdin_fd);
        p.stdin_fd = -1;
        char *out = read_all(p.stdout_fd);
        CHECK_STREQ(out, "hello\nto-stderr\n");
        free(out);
        struct proc_status st;
        CHECK_INT(proc_wait(&p, &st), ==, 0);
        CHECK_INT(st.exit_code, ==, 0);
        proc_done(&p);
        CHECK_INT(p.stdout_fd, ==, -1);
}

TEST(proc_own_process_group_unless_foreground) {
        char *argv[] = {"sleep", "1000", NULL};
        struct proc_opts o = {.argv = argv, .envp = envp_min, .stdin_fd = PROC_NULL,
                              .stdout_fd = PROC_NULL, .stderr_fd = PROC_NULL};
        struct proc p = PROC_INIT;
        CHECK_INT(proc_spawn(&o, &p), ==, 0);
        CHECK_INT(getpgid(p.pid), ==, p.pid);
        proc_done(&p); /* kills and reaps it */
        CHECK_INT(p.pid, ==, 0);
        o.foreground = true;
        CHECK_INT(proc_spawn(&o, &p), ==, 0);
        CHECK_INT(getpgid(p.pid), ==, getpgrp());
        proc_done(&p);
}

TEST(proc_timeout_sends_sigterm_first) {
        /* sh and sleep both die of SIGTERM: the grace (a minute) is not
         * waited for */
        char *argv[] = {"sh", "-c", "sleep 1000 & wait", NULL};
        struct proc_opts o = {.argv = argv, .envp = envp_min, .stdin_fd = PROC_NULL,
                              .stdout_fd = PROC_NULL, .stderr_fd = PROC_NULL,
                              .timeout_ms = 200, .kill_grace_ms = 60000};
        struct proc_status st;
        CHECK_INT(proc_run(&o, &st), ==, 0);
        CHECK(st.timed_out);
        CHECK(!st.cancelled);
        CHECK_INT(st.signal, ==, SIGTERM);
        CHECK_INT(st.elapsed_ms, <, 30000);
}

TEST(proc_timeout_kills_the_whole_group) {
        /* Both ignore SIGTERM (an ignored signal stays ignored across
         * exec): the group gets SIGKILL after the grace, the background
         * sleep included. */
        char *argv[] = {"sh", "-c", "trap '' TERM; sleep 1000 & echo $!; wait", NULL};
        struct proc_opts o = {.argv = argv, .envp = envp_min, .stdin_fd = PROC_NULL,
                              .stdout_fd = PROC_PIPE, .stderr_fd = PROC_NULL,
                              .timeout_ms = 300, .kill_grace_ms = 200};
        struct proc p = PROC_INIT;
        CHECK_INT(proc_spawn(&o, &p), ==, 0);
        char *line = read_line(p.stdout_fd);
        pid_t bg = (pid_t)atoi(line);
        free(line);
        CHECK_INT(bg, >, 0);
        struct proc_status st;
        CHECK_INT(proc_wait(&p, &st), ==, 0);
        CHECK(st.timed_out);
        CHECK_INT(st.signal, ==, SIGKILL);
        if (bg > 0)
                CHECK(wait_gone(bg));
        proc_done(&p);
}

TEST(proc_cancel_stops_promptly) {
        static volatile sig_atomic_t cancel;
        cancel = 0;
        char *argv[] = {"sh", "-c", "echo ready; exec sleep 1000", NULL};
        struct proc_opts o = {.argv = argv, .envp = envp_min, .stdin_fd = PROC_NULL,
                              .stdout_fd = PROC_PIPE, .stderr_fd = PROC_NULL, .cancel = &cancel};
        struct proc p = PROC_INIT;
        CHECK_INT(proc_spawn(&o, &p), ==, 0);
        char *line = read_line(p.stdout_fd);
        CHECK_STREQ(line, "ready");
        free(line);
        cancel = 1;
        uint64_t t0 = ms_now();
        struct proc_status st;
        CHECK_INT(proc_wait(&p, &st), ==, 0);
        CHECK(st.cancelled);
        CHECK(!st.timed_out);
        CHECK_INT(st.signal, ==, SIGTERM);
        CHECK_INT(ms_now() - t0, <, 3000); /* a poll period and a signal, not the grace */
        proc_done(&p);
}

TEST(proc_stop_and_try_reap) {
        char *argv[] = {"sleep", "1000", NULL};
        struct proc_opts o = {.argv = argv, .envp = envp_min, .stdin_fd = PROC_NULL,
                              .stdout_fd = PROC_NULL, .stderr_fd = PROC_NULL};
        struct proc p = PROC_INIT;
        CHECK_INT(proc_spawn(&o, &p), ==, 0);
        struct proc_status st;
        CHECK_INT(proc_try_reap(&p, &st), ==, 0); /* still running */
        CHECK_INT(proc_stop(&p, &st), ==, 0);
        CHECK_INT(st.signal, ==, SIGTERM);
        CHECK(!st.timed_out && !st.cancelled);
        CHECK_INT(p.pid, ==, 0);
        CHECK_INT(proc_try_reap(&p, NULL), ==, 1);
        proc_done(&p);
}

TEST(proc_child_dies_with_the_spawning_process) {
        /* An intermediate process spawns `sleep` and exits without waiting;
         * as the subreaper, this test inherits the sleep and sees how it
         * ended: killed by PR_SET_PDEATHSIG's SIGKILL. */
        CHECK_INT(prctl(PR_SET_CHILD_SUBREAPER, 1), ==, 0);
        int pp[2];
        CHECK_INT(pipe2(pp, O_CLOEXEC), ==, 0);
        pid_t mid = fork();
        if (mid == 0) {
                char *argv[] = {"sleep", "1000", NULL};
                struct proc_opts o = {.argv = argv, .envp = envp_min, .stdin_fd = PROC_NULL,
                                      .stdout_fd = PROC_NULL, .stderr_fd = PROC_NULL};
                struct proc p = PROC_INIT;
                if (proc_spawn(&o, &p) < 0)
                        _exit(1);
                (void)!write(pp[1], &p.pid, sizeof p.pid);
                _exit(0);
        }
        close(pp[1]);
        pid_t sleeper = 0;
        CHECK_INT(read(pp[0], &sleeper, sizeof sleeper), ==, sizeof sleeper);
        close(pp[0]);
        int st;
        CHECK_INT(waitpid(mid, &st, 0), ==, mid);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        bool reaped = false;
        for (uint64_t deadline = ms_now() + 10000; sleeper > 0 && ms_now() < deadline;) {
                pid_t w = waitpid(sleeper, &st, WNOHANG);
                if (w == sleeper) {
                        reaped = true;
                        break;
                }
                struct pollfd none;
                (void)poll(&none, 0, 20);
        }
        CHECK(reaped);
        CHECK(reaped && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        if (!reaped && sleeper > 0) {
                kill(sleeper, SIGKILL);
                waitpid(sleeper, NULL, 0);
        }
        CHECK_INT(prctl(PR_SET_CHILD_SUBREAPER, 0), ==, 0);
}

TEST(proc_isolate_gives_pid_1_and_private_mounts) {
        if (geteuid() != 0) {
                printf("    skipped: not root\n");
                return;
        }
        char dir[] = "/var/tmp/kiln-os-test.XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        /* the glob is the shell's own: no other process runs meanwhile */
        char *script = xasprintf("echo $$; set -- /proc/[0-9]*; echo $#; mount -t tmpfs none %s && "
                                 "grep -c ' %s ' /proc/self/mountinfo",
                                 dir, dir);
        char *argv[] = {"sh", "-c", script, NULL};
        struct proc_opts o = {.argv = argv, .envp = envp_min, .stdin_fd = PROC_NULL,
                              .stderr_fd = PROC_STDOUT, .isolate = true};
        struct proc_status st;
        char *out = run_capture(o, &st);
        CHECK_INT(st.exit_code, ==, 0);
        /* pid 1, alone in a new /proc; the tmpfs seen inside */
        CHECK_STREQ(out, "1\n1\n1\n");
        free(out);
        /* and not here */
        char *mi = NULL;
        size_t len;
        CHECK_INT(read_file("/proc/self/mountinfo", 1 << 20, &mi, &len), ==, 0);
        char *needle = xasprintf(" %s ", dir);
        CHECK(mi && !strstr(mi, needle));
        free(needle);
        free(mi);
        free(script);
        rmdir(dir);
}

/* ---- fs ------------------------------------------------------------------ */

static char *fs_dir(void) {
        char *d = xstrdup("/var/tmp/kiln-os-test.XXXXXX");
        if (!mkdtemp(d))
                abort();
        return d;
}

static void touch(const char *dir, const char *name) {
        char *p = xasprintf("%s/%s", dir, name);
        CHECK_INT(write_file(p, "x", 1, 0644, 0), ==, 0);
        free(p);
}

/* Whether dir/name (name "": dir itself) exists, as a link or anything. */
static bool exists_in(const char *dir, const char *name) {
        char *p = xasprintf("%s%s%s", dir, name[0] ? "/" : "", name);
        struct stat st;
        bool r = lstat(p, &st) == 0;
        free(p);
        return r;
}

TEST(rm_rf_refuses_root_empty_and_dot_paths) {
        CHECK_INT(rm_rf(NULL), ==, -EINVAL);
        CHECK_INT(rm_rf(""), ==, -EINVAL);
        CHECK_INT(rm_rf("/"), ==, -EPERM);
        CHECK_INT(rm_rf("//"), ==, -EPERM);
        CHECK_INT(rm_rf("/usr/.."), ==, -EINVAL);
        CHECK_INT(rm_rf("."), ==, -EINVAL);
        CHECK_INT(rm_rf("/tmp/./"), ==, -EINVAL);
        /* the root through a relative path from it */
        char *cwd = getcwd(NULL, 0);
        CHECK_INT(chdir("/usr"), ==, 0);
        CHECK_INT(rm_rf("../"), ==, -EINVAL);
        CHECK_INT(chdir(cwd), ==, 0);
        free(cwd);
        /* a directory whose name only starts with dots is fine */
        char *d = fs_dir();
        char *odd = xasprintf("%s/..x", d);
        CHECK_INT(mkdir(odd, 0755), ==, 0);
        CHECK_INT(rm_rf(odd), ==, 0);
        CHECK(!exists_in(d, "..x"));
        CHECK_INT(rm_rf(d), ==, 0);
        CHECK_INT(rm_rf(d), ==, 0); /* gone already: fine */
        free(odd);
        free(d);
}

TEST(rm_rf_does_not_follow_symlinks) {
        char *d = fs_dir(), *outside = fs_dir();
        touch(outside, "keep");
        char *sub = xasprintf("%s/sub", d), *link = xasprintf("%s/sub/out", d),
             *top = xasprintf("%s/toplink", d);
        CHECK_INT(mkdir(sub, 0755), ==, 0);
        CHECK_INT(symlink(outside, link), ==, 0);
        /* a symlink given as the path itself: the link goes, not its target */
        CHECK_INT(symlink(outside, top), ==, 0);
        CHECK_INT(rm_rf(top), ==, 0);
        CHECK(exists_in(outside, "keep"));
        CHECK_INT(rm_rf(d), ==, 0);
        CHECK(!exists_in(d, ""));
        CHECK(exists_in(outside, "keep"));
        CHECK_INT(rm_rf(outside), ==, 0);
        free(sub), free(link), free(top), free(d), free(outside);
}

TEST(rm_rf_opens_up_directories_without_access) {
        char *d = fs_dir();
        char *w = xasprintf("%s/work/work", d);
        CHECK_INT(mkdir_p(w, 0755), ==, 0);
        touch(w, "f");
        CHECK_INT(chmod(w, 0), ==, 0);
        CHECK_INT(rm_rf(d), ==, 0);
        CHECK(!exists_in(d, ""));
        free(w), free(d);
}

TEST(fs_list_sorted_by_bytes) {
        char *d = fs_dir();
        const char *names[] = {"b", "a", "C", "..x", ".hidden"};
        for (size_t i = 0; i < ARRAY_SIZE(names); i++)
                touch(d, names[i]);
        char **v = NULL;
        size_t n = 0;
        CHECK_INT(fs_list(AT_FDCWD, d, &v, &n), ==, 0);
        CHECK_INT(n, ==, 5);
        const char *want[] = {"..x", ".hidden", "C", "a", "b"};
        for (size_t i = 0; i < n && i < 5; i++)
                CHECK_STREQ(v[i], want[i]);
        CHECK(v[n] == NULL);
        fs_names_free(v);
        CHECK_INT(rm_rf(d), ==, 0);
        CHECK_INT(mkdir(d, 0755), ==, 0);
        CHECK_INT(fs_list(AT_FDCWD, d, &v, &n), ==, 0);
        CHECK_INT(n, ==, 0);
        CHECK(v && v[0] == NULL);
        fs_names_free(v);
        CHECK_INT(fs_list(AT_FDCWD, "/kiln-no-such-dir", &v, &n), ==, -ENOENT);
        CHECK_INT(rm_rf(d), ==, 0);
        free(d);
}

TEST(fs_copy_sparse_keeps_holes) {
        char *d = fs_dir();
        char *src = xasprintf("%s/src", d), *dst = xasprintf("%s/dst", d);
        int s = open(src, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int t = open(dst, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(s >= 0 && t >= 0);
        const uint64_t size = 64u << 20, at = 4096;
        CHECK_INT(pwrite_all(s, "head", 4, 0), ==, 0);
        CHECK_INT(pwrite_all(s, "middle", 6, 32u << 20), ==, 0);
        CHECK_INT(ftruncate(s, (off_t)size), ==, 0);
        CHECK_INT(ftruncate(t, (off_t)(size + at)), ==, 0);
        CHECK_INT(fs_copy_sparse(s, t, at), ==, 0);
        char buf[8] = {0};
        CHECK_INT(pread_all(t, buf, 4, at), ==, 0);
        CHECK(memcmp(buf, "head", 4) == 0);
        CHECK_INT(pread_all(t, buf, 6, at + (32u << 20)), ==, 0);
        CHECK(memcmp(buf, "middle", 6) == 0);
        struct stat st;
        CHECK_INT(fstat(t, &st), ==, 0);
        /* two small extents, not 64 MiB */
        CHECK_INT((uint64_t)st.st_blocks * 512, <, 8u << 20);
        uint64_t a, b;
        CHECK_INT(fs_next_data(s, 4096 * 4, size, &a, &b), ==, 0);
        CHECK(a >= 4096 * 4 && a <= (32u << 20) && b > a && b <= size);
        CHECK_INT(fs_next_data(s, size, size, &a, &b), ==, 0);
        CHECK(a == size && b == size);
        close(s);
        close(t);
        CHECK_INT(rm_rf(d), ==, 0);
        free(src), free(dst), free(d);
}
