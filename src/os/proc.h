/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proc.h — start a program on the host and wait for it: the one place kiln
 * forks and execs outside a sandbox (os/sandbox.h runs commands inside a
 * tree; it has its own, namespaced process tree).
 *
 * What every spawned program gets:
 *   - exactly the environment the caller passes (opts->envp is required: a
 *     program never inherits kiln's environment, with its KILN_VAR_* values
 *     and credentials, by accident; proc_env_from_host copies named
 *     variables when a program needs some of kiln's);
 *   - stdin, stdout and stderr as asked (a descriptor, /dev/null, or a new
 *     pipe whose other end kiln keeps), every other descriptor closed;
 *   - default signal dispositions and an empty signal mask;
 *   - PR_SET_PDEATHSIG(SIGKILL): it dies when the kiln thread that started
 *     it ends (so start long-lived programs from a thread that outlives
 *     them);
 *   - its own process group (unless opts->foreground), so a terminal's
 *     Ctrl-C reaches kiln only and a timeout or cancel stops the program
 *     with everything it started in its group.
 *
 * Stopping: when the timeout expires or *opts->cancel becomes non-zero,
 * proc_wait sends SIGTERM to the group, then SIGKILL after kill_grace_ms,
 * and once the program has exited sweeps what is left of its group with
 * SIGKILL before reaping it (the group id cannot be reused until then).
 * The wait polls the cancel flag every PROC_POLL_MS; the program's exit is
 * noticed at once (a pidfd).
 *
 * Ownership: struct proc holds the child until proc_wait, proc_stop or
 * proc_try_reap has reaped it, and kiln's ends of PROC_PIPE descriptors
 * until proc_done (which also kills and reaps a child still running, so a
 * struct proc that went through proc_done never leaves a process behind).
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PROC_NULL (-1)   /* a stdio descriptor: /dev/null */
#define PROC_PIPE (-2)   /* a new pipe; kiln's end is in struct proc */
#define PROC_STDOUT (-3) /* stderr only: wherever stdout goes */

#define PROC_POLL_MS 20u            /* how often the cancel flag is read */
#define PROC_KILL_GRACE_MS 5000u    /* SIGTERM to SIGKILL, by default */

struct proc_opts {
        char *const *argv;     /* argv[0] is looked up in envp's PATH unless it has a '/' */
        char *const *envp;     /* the complete environment (required) */
        const char *cwd;       /* NULL: kiln's */
        int stdin_fd;          /* a descriptor (0-2 included: kiln's own), PROC_NULL or PROC_PIPE */
        int stdout_fd;         /* same */
        int stderr_fd;         /* same, or PROC_STDOUT */
        /* Stay in kiln's process group: for an interactive program on
         * kiln's terminal (a background group could not read from it). */
        bool foreground;
        /* Own mount namespace (private: nothing propagates back) and PID
         * namespace, with a fresh /proc: whatever the program mounts or
         * starts ends with it, also when kiln is killed. Needs root. The
         * program is pid 1 there, so it ignores SIGTERM unless it handles
         * it: a timeout then ends it with SIGKILL after the grace. */
        bool isolate;
        uint64_t timeout_ms;   /* from proc_spawn; 0: none */
        unsigned kill_grace_ms; /* 0: PROC_KILL_GRACE_MS */
        const volatile sig_atomic_t *cancel; /* non-zero: stop it (NULL: never) */
};

struct proc {
        pid_t pid;             /* > 0 until reaped */
        int pidfd;             /* -1 when the kernel has no pidfd_open */
        int stdin_fd;          /* kiln's ends of PROC_PIPE descriptors, else -1 */
        int stdout_fd;
        int stderr_fd;
        bool own_group;
        uint64_t start_ms;     /* CLOCK_MONOTONIC, in ms */
        uint64_t deadline_ms;  /* 0: none */
        unsigned kill_grace_ms;
        const volatile sig_atomic_t *cancel;
};

#define PROC_INIT {.pid = 0, .pidfd = -1, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1}

struct proc_status {
        int exit_code;         /* the exit status, or 128 + signal when killed */
        int signal;            /* the signal that killed it, or 0 */
        int wait_status;       /* as from waitpid */
        bool timed_out;        /* kiln stopped it: the timeout expired */
        bool cancelled;        /* kiln stopped it: *cancel was set */
        uint64_t elapsed_ms;
};

/* Starts the program. Returns 0 with *ret filled (running), or -errno and
 * no process: -EINVAL (no argv or envp, a bad descriptor choice), -ENOENT /
 * -EACCES / -ENOEXEC when it cannot be executed (not installed, ...), or
 * what failed in between (a cwd that is not there, -EPERM for isolate
 * without privileges). */
int proc_spawn(const struct proc_opts *opts, struct proc *ret);

/* Waits until the program ends (stopping it on timeout or cancel, see
 * above) and reaps it. Returns 0 with *ret (timed_out / cancelled tell
 * whether kiln stopped it), or -errno when waiting failed (the program is
 * then killed and reaped). 0 at once, with a zeroed *ret, when already
 * reaped. */
int proc_wait(struct proc *p, struct proc_status *ret);

/* Reaps the program if it has ended, without blocking: 1 with *ret (may be
 * NULL) when it had (or was reaped before), 0 when it still runs. */
int proc_try_reap(struct proc *p, struct proc_status *ret);

/* Sends sig to the program's group (to the program alone with
 * foreground); nothing once it is reaped. */
void proc_signal(struct proc *p, int sig);

/* Stops the program now: SIGTERM to its group, SIGKILL after the grace,
 * then reaps it. *ret (may be NULL) as for proc_wait. */
int proc_stop(struct proc *p, struct proc_status *ret);

/* Closes kiln's pipe ends and the pidfd; a program still running is killed
 * (SIGKILL, its group too) and reaped. *p is PROC_INIT afterwards. */
void proc_done(struct proc *p);

/* proc_spawn, proc_wait, proc_done (no PROC_PIPE: nobody would read it). */
int proc_run(const struct proc_opts *opts, struct proc_status *ret);

/* A NULL-terminated environment with kiln's values of the variables named
 * in names (those that are set), then the "NAME=value" strings of extra
 * (may be NULL). Owned by the caller: proc_env_free. */
char **proc_env_from_host(const char *const *names, const char *const *extra);
void proc_env_free(char **envp);
