/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proc.c — spawning and waiting (see proc.h for the contract).
 *
 * The child is made with a raw clone(2) without a new stack (fork
 * semantics), so that the isolate option can ask for the new PID and mount
 * namespaces in the same call: the program itself is then pid 1 of its
 * namespace, with no intermediate process to relay its status. Between
 * clone and exec the child makes only system calls (no malloc, no stdio):
 * every string and descriptor is prepared before, and a failure is reported
 * as {errno, stage} on a close-on-exec pipe, whose EOF tells the parent the
 * exec happened.
 *
 * A child in a new PID namespace sees 0 as its parent, so the usual
 * "getppid() changed: kiln died before PR_SET_PDEATHSIG" check is made on a
 * pidfd of kiln opened before the clone.
 *
 * Waiting polls a pidfd (the exit is noticed at once) with a timeout that
 * is the nearest of: the deadline, the end of the kill grace, and the next
 * read of the cancel flag. The exit is first observed with WNOWAIT, so the
 * group can be swept while the leader's pid (the group id) is still taken.
 */
#include "os/proc.h"

#include "base/clock.h"
#include "base/util.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

struct spawn_err {
        int32_t err;
        char stage[28];
};

_noreturn_ static void child_fail(int fd, const char *stage) {
        struct spawn_err e = {.err = errno ? errno : EIO};
        size_t n = strlen(stage);
        memcpy(e.stage, stage, n < sizeof e.stage ? n : sizeof e.stage - 1);
        (void)!write(fd, &e, sizeof e);
        _exit(127);
}

/* In the child: only system calls from here to exec. */
_noreturn_ static void child_main(const struct proc_opts *o, int src[3], int err_fd, int kiln_pidfd,
                                  pid_t kiln) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                child_fail(err_fd, "prctl");
        if (o->isolate) {
                struct pollfd pfd = {.fd = kiln_pidfd, .events = POLLIN};
                if (kiln_pidfd >= 0 && poll(&pfd, 1, 0) != 0)
                        _exit(127); /* kiln is gone already */
        } else if (getppid() != kiln) {
                _exit(127);
        }
        if (!o->foreground && setpgid(0, 0) < 0)
                child_fail(err_fd, "setpgid");
        if (o->isolate) {
                if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                        child_fail(err_fd, "private mounts");
                /* pid 1 of the new namespace: a /proc that shows it (as
                 * before this existed: a tool that needs none still runs) */
                (void)mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        }
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void)sigaction(sig, &dfl, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);

        int null = -1;
        for (int i = 0; i < 3; i++) {
                if (src[i] == PROC_NULL) {
                        if (null < 0 && (null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
                                child_fail(err_fd, "/dev/null");
                        src[i] = null;
                }
                /* a source among 0-2 that another dup2 would overwrite */
                if (src[i] < 3 && src[i] != i && (src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3)) < 0)
                        child_fail(err_fd, "dup");
        }
        for (int i = 0; i < 3; i++) {
                if (src[i] == i ? fcntl(i, F_SETFD, 0) < 0 : dup2(src[i], i) < 0)
                        child_fail(err_fd, "dup2");
        }
        (void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
        if (o->cwd && chdir(o->cwd) < 0)
                child_fail(err_fd, "chdir");
        environ = (char **)o->envp; /* execvpe searches the PATH of environ */
        execvpe(o->argv[0], o->argv, o->envp);
        child_fail(err_fd, "exec");
}

static bool fd_choice_ok(int fd, bool is_stderr) {
        return fd >= 0 || fd == PROC_NULL || fd == PROC_PIPE || (is_stderr && fd == PROC_STDOUT);
}

static void close_pair(int p[2]) {
        for (int i = 0; i < 2; i++)
                if (p[i] >= 0) {
                        close(p[i]);
                        p[i] = -1;
                }
}

int proc_spawn(const struct proc_opts *o, struct proc *ret) {
        int pipes[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
        int src[3], errp[2] = {-1, -1}, kiln_pidfd = -1, r = 0;
        struct proc p = PROC_INIT;

        if (!o || !ret || !o->argv || !o->argv[0] || !o->envp || !fd_choice_ok(o->stdin_fd, false) ||
            !fd_choice_ok(o->stdout_fd, false) || !fd_choice_ok(o->stderr_fd, true))
                return -EINVAL;
        const int want[3] = {o->stdin_fd, o->stdout_fd, o->stderr_fd};
        for (int i = 0; i < 3; i++) {
                src[i] = want[i];
                if (want[i] != PROC_PIPE)
                        continue;
                if (pipe2(pipes[i], O_CLOEXEC) < 0) {
                        r = -errno;
                        goto fail;
                }
                src[i] = pipes[i][i == 0 ? 0 : 1]; /* the child's end */
        }
        if (src[2] == PROC_STDOUT)
                src[2] = src[1];
        if (pipe2(errp, O_CLOEXEC) < 0) {
                r = -errno;
                goto fail;
        }
        if (o->isolate)
                kiln_pidfd = pidfd_open(getpid(), 0); /* -1: no check, see child_main */

        pid_t kiln = getpid();
        unsigned long flags = SIGCHLD | (o->isolate ? CLONE_NEWNS | CLONE_NEWPID : 0);
        pid_t pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
        if (pid == 0) {
                close(errp[0]);
                child_main(o, src, errp[1], kiln_pidfd, kiln);
        }
        if (pid < 0) {
                r = -errno;
                goto fail;
        }
        close(errp[1]);
        errp[1] = -1;
        struct spawn_err e = {0};
        ssize_t n;
        while ((n = read(errp[0], &e, sizeof e)) < 0 && errno == EINTR)
                ;
        if (n == sizeof e) {
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                r = e.err > 0 ? -e.err : -EIO;
                goto fail;
        }
        p.pid = pid;
        p.pidfd = pidfd_open(pid, 0);
        p.own_group = !o->foreground;
        p.start_ms = now_ms();
        p.deadline_ms = o->timeout_ms ? p.start_ms + o->timeout_ms : 0;
        p.kill_grace_ms = o->kill_grace_ms ? o->kill_grace_ms : PROC_KILL_GRACE_MS;
        p.cancel = o->cancel;
        for (int i = 0; i < 3; i++) {
                if (want[i] != PROC_PIPE)
                        continue;
                int mine = pipes[i][i == 0 ? 1 : 0];
                close(pipes[i][i == 0 ? 0 : 1]);
                pipes[i][0] = pipes[i][1] = -1;
                *(i == 0 ? &p.stdin_fd : i == 1 ? &p.stdout_fd : &p.stderr_fd) = mine;
        }
        *ret = p;
        r = 0;
fail:
        for (int i = 0; i < 3; i++)
                close_pair(pipes[i]);
        close_pair(errp);
        if (kiln_pidfd >= 0)
                close(kiln_pidfd);
        return r;
}

void proc_signal(struct proc *p, int sig) {
        if (p->pid > 0)
                (void)kill(p->own_group ? -p->pid : p->pid, sig);
}

static void fill_status(const struct proc *p, int st, struct proc_status *ret) {
        *ret = (struct proc_status){.wait_status = st, .elapsed_ms = now_ms() - p->start_ms};
        if (WIFEXITED(st)) {
                ret->exit_code = WEXITSTATUS(st);
        } else if (WIFSIGNALED(st)) {
                ret->signal = WTERMSIG(st);
                ret->exit_code = 128 + ret->signal;
        } else {
                ret->exit_code = 255;
        }
}

/* Reaps p, whose exit has been observed (or which was SIGKILLed); with
 * sweep, kills what is left of its group first. */
static int reap(struct proc *p, bool sweep, struct proc_status *ret) {
        int st = 0;
        if (sweep && p->own_group)
                (void)kill(-p->pid, SIGKILL);
        while (waitpid(p->pid, &st, 0) < 0)
                if (errno != EINTR) {
                        int r = -errno;
                        p->pid = 0;
                        return r;
                }
        if (ret)
                fill_status(p, st, ret);
        p->pid = 0;
        return 0;
}

/* Whether p has exited (without reaping it): 1, 0, or -errno. */
static int exited(struct proc *p) {
        siginfo_t si = {0};
        if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
                return errno == EINTR ? 0 : -errno;
        return si.si_pid == p->pid;
}

/* Waits until p exits or timeout_ms (-1: forever) has passed. */
static void nap(const struct proc *p, int timeout_ms) {
        if (p->pidfd >= 0) {
                struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
                (void)poll(&pfd, 1, timeout_ms);
                return;
        }
        /* no pidfd: poll the exit */
        (void)poll(NULL, 0, timeout_ms < 0 || timeout_ms > (int)PROC_POLL_MS ? (int)PROC_POLL_MS : timeout_ms);
}

int proc_wait(struct proc *p, struct proc_status *ret) {
        uint64_t kill_at = 0;
        bool stopping = false, timed_out = false, cancelled = false;

        if (p->pid <= 0) {
                *ret = (struct proc_status){0};
                return 0;
        }
        for (;;) {
                int r = exited(p);
                if (r < 0) {
                        proc_signal(p, SIGKILL);
                        (void)kill(p->pid, SIGKILL);
                        (void)reap(p, false, NULL);
                        return r;
                }
                if (r > 0)
                        break;
                uint64_t now = now_ms();
                if (!stopping) {
                        cancelled = p->cancel && *p->cancel;
                        timed_out = !cancelled && p->deadline_ms && now >= p->deadline_ms;
                        if (cancelled || timed_out) {
                                stopping = true;
                                proc_signal(p, SIGTERM);
                                kill_at = now + p->kill_grace_ms;
                        }
                } else if (kill_at && now >= kill_at) {
                        proc_signal(p, SIGKILL);
                        (void)kill(p->pid, SIGKILL); /* also when it left its group */
                        kill_at = 0;
                }
                uint64_t until = stopping ? kill_at : p->deadline_ms;
                int timeout = -1;
                if (until)
                        timeout = until > now ? (int)(until - now < INT32_MAX ? until - now : INT32_MAX) : 0;
                if (!stopping && p->cancel && (timeout < 0 || timeout > (int)PROC_POLL_MS))
                        timeout = (int)PROC_POLL_MS;
                nap(p, timeout);
        }
        int r = reap(p, stopping, ret);
        if (r < 0)
                return r;
        ret->timed_out = timed_out;
        ret->cancelled = cancelled;
        return 0;
}

int proc_try_reap(struct proc *p, struct proc_status *ret) {
        if (p->pid <= 0)
                return 1;
        int r = exited(p);
        if (r <= 0)
                return r < 0 ? r : 0;
        r = reap(p, false, ret);
        return r < 0 ? r : 1;
}

int proc_stop(struct proc *p, struct proc_status *ret) {
        struct proc_status st;
        if (p->pid <= 0) {
                if (ret)
                        *ret = (struct proc_status){0};
                return 0;
        }
        /* the deadline is now: proc_wait's stopping path does the rest */
        p->deadline_ms = now_ms();
        p->cancel = NULL;
        int r = proc_wait(p, &st);
        if (r == 0 && ret) {
                st.timed_out = false;
                *ret = st;
        }
        return r;
}

void proc_done(struct proc *p) {
        if (p->pid > 0) {
                proc_signal(p, SIGKILL);
                (void)kill(p->pid, SIGKILL);
                (void)reap(p, true, NULL);
        }
        int *fds[] = {&p->pidfd, &p->stdin_fd, &p->stdout_fd, &p->stderr_fd};
        for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
                if (*fds[i] >= 0)
                        close(*fds[i]);
        *p = (struct proc)PROC_INIT;
}

int proc_run(const struct proc_opts *o, struct proc_status *ret) {
        if (!o || o->stdin_fd == PROC_PIPE || o->stdout_fd == PROC_PIPE || o->stderr_fd == PROC_PIPE)
                return -EINVAL;
        struct proc p = PROC_INIT;
        int r = proc_spawn(o, &p);
        if (r < 0)
                return r;
        r = proc_wait(&p, ret);
        proc_done(&p);
        return r;
}

char **proc_env_from_host(const char *const *names, const char *const *extra) {
        size_t n = 0, cap = 1;
        for (const char *const *e = names; e && *e; e++)
                cap++;
        for (const char *const *e = extra; e && *e; e++)
                cap++;
        char **v = xcalloc(cap, sizeof(char *));
        for (const char *const *e = names; e && *e; e++) {
                const char *val = getenv(*e);
                if (val)
                        v[n++] = xasprintf("%s=%s", *e, val);
        }
        for (const char *const *e = extra; e && *e; e++)
                v[n++] = xstrdup(*e);
        v[n] = NULL;
        return v;
}

void proc_env_free(char **envp) {
        for (char **e = envp; e && *e; e++)
                free(*e);
        free(envp);
}
