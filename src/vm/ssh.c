/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ssh.c — commands in the guest, through the OpenSSH client.
 *
 * The client is run with options that make it fit for automation: the
 * VM's throwaway key only (IdentitiesOnly, no agent, no user config), no
 * host key checks (the guest made its host keys at first boot; nothing to
 * compare them with, and the port is on loopback), no prompts (BatchMode),
 * bounded connection setup and keepalives so a dead guest ends the call.
 */
#include "vm/vm-internal.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

char **vm_ssh_argv(const struct vm *vm, bool tty, const char *command) {
        static const char *const fixed[] = {
                "-F", "none",
                "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null",
                "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "IdentitiesOnly=yes",
                "-o", "IdentityAgent=none",
                "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=10",
                "-o", "ServerAliveInterval=5",
                "-o", "ServerAliveCountMax=6",
                "-o", "LogLevel=ERROR",
        };
        size_t n = 0, cap = ARRAY_SIZE(fixed) + 12;
        char **v = xcalloc(cap, sizeof(char *));
        v[n++] = xstrdup("ssh");
        for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
                v[n++] = xstrdup(fixed[i]);
        v[n++] = xstrdup("-i");
        v[n++] = xstrdup(vm->key_path);
        v[n++] = xstrdup("-p");
        v[n++] = xasprintf("%u", vm->info.ssh_port);
        v[n++] = xstrdup(tty ? "-t" : "-T");
        v[n++] = xasprintf("%s@127.0.0.1", vm->info.user);
        if (command) {
                v[n++] = xstrdup("--");
                v[n++] = xstrdup(command);
        }
        v[n] = NULL;
        return v;
}

/* Quotes s for a POSIX shell when it needs it. */
static void add_quoted(struct strbuf *sb, const char *s) {
        bool plain = *s != 0;
        for (const char *p = s; *p; p++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@,+", *p))
                        plain = false;
        if (plain) {
                strbuf_adds(sb, s);
                return;
        }
        strbuf_addc(sb, '\'');
        for (const char *p = s; *p; p++) {
                if (*p == '\'')
                        strbuf_adds(sb, "'\\''");
                else
                        strbuf_addc(sb, *p);
        }
        strbuf_addc(sb, '\'');
}

char *vm_ssh_command_line(const struct vm *vm) {
        if (!vm->info.ssh_port)
                return NULL;
        /* the short form a person would type: the options that matter */
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "ssh -i ");
        add_quoted(&sb, vm->key_path);
        strbuf_addf(&sb, " -p %u -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null %s@127.0.0.1",
                    vm->info.ssh_port, vm->info.user);
        return strbuf_detach(&sb);
}

static void set_nonblock(int fd) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

int vm_exec(struct vm *vm, const char *command, const void *stdin_data, size_t stdin_len,
            struct strbuf *out, int *ret_status) {
        if (!vm->ready)
                return vm_fail(vm, -ENOTCONN, "the VM is not ready");
        char **argv = vm_ssh_argv(vm, false, command);
        struct proc_opts po = {.argv = argv, .envp = vm->env, .stdin_fd = PROC_PIPE,
                               .stdout_fd = out ? PROC_PIPE : STDOUT_FILENO,
                               .stderr_fd = out ? PROC_STDOUT : STDERR_FILENO,
                               .timeout_ms = (uint64_t)vm->o.exec_timeout_s * 1000,
                               .cancel = vm->o.cancel};
        _cleanup_(proc_done) struct proc ssh = PROC_INIT;
        int r = proc_spawn(&po, &ssh);
        vm_strv_free(argv);
        if (r < 0)
                return vm_fail(vm, r, r == -ENOENT ? "ssh not found (package openssh-client)" : "cannot run ssh: %s",
                               strerror(-r));
        /* Feed stdin and drain the output together: either may block. */
        void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN);
        int wfd = ssh.stdin_fd, rfd = ssh.stdout_fd;
        ssh.stdin_fd = ssh.stdout_fd = -1; /* closed here */
        size_t written = 0;
        if (!stdin_data || stdin_len == 0) {
                close(wfd);
                wfd = -1;
        } else {
                set_nonblock(wfd);
        }
        uint64_t deadline = ssh.deadline_ms;
        int err = 0;
        while (wfd >= 0 || rfd >= 0) {
                if (vm->o.cancel && *vm->o.cancel) {
                        err = -ECANCELED;
                        break;
                }
                if (deadline && now_ms() >= deadline) {
                        err = -ETIMEDOUT;
                        break;
                }
                struct pollfd p[2];
                nfds_t np = 0;
                int wi = -1, ri = -1;
                if (wfd >= 0) {
                        wi = (int)np;
                        p[np++] = (struct pollfd){.fd = wfd, .events = POLLOUT};
                }
                if (rfd >= 0) {
                        ri = (int)np;
                        p[np++] = (struct pollfd){.fd = rfd, .events = POLLIN};
                }
                int n = poll(p, np, 100);
                if (n < 0 && errno != EINTR) {
                        err = -errno;
                        break;
                }
                if (n <= 0)
                        continue;
                if (wi >= 0 && p[wi].revents) {
                        ssize_t w = write(wfd, (const char *)stdin_data + written, stdin_len - written);
                        if (w > 0)
                                written += (size_t)w;
                        if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == stdin_len) {
                                close(wfd); /* EOF for the command (or it stopped reading) */
                                wfd = -1;
                        }
                }
                if (ri >= 0 && p[ri].revents) {
                        char buf[16384];
                        ssize_t rd = read(rfd, buf, sizeof(buf));
                        if (rd > 0) {
                                if (out->len + (size_t)rd > VM_EXEC_MAX_OUTPUT) {
                                        err = -E2BIG;
                                        break;
                                }
                                strbuf_add(out, buf, (size_t)rd);
                        } else if (rd == 0 || (errno != EAGAIN && errno != EINTR)) {
                                close(rfd);
                                rfd = -1;
                        }
                }
        }
        if (wfd >= 0)
                close(wfd);
        if (rfd >= 0)
                close(rfd);
        signal(SIGPIPE, old_pipe);
        struct proc_status st = {0};
        if (err)
                proc_signal(&ssh, SIGKILL);
        r = proc_wait(&ssh, &st);
        if (err == 0 && r == 0 && (st.cancelled || st.timed_out))
                r = st.cancelled ? -ECANCELED : -ETIMEDOUT;
        if (err == 0)
                err = r;
        switch (err) {
        case 0: break;
        case -ECANCELED: return vm_fail(vm, err, "interrupted");
        case -ETIMEDOUT: return vm_fail(vm, err, "the command did not finish within %u s", vm->o.exec_timeout_s);
        case -E2BIG: return vm_fail(vm, err, "the command wrote more than %u MiB", VM_EXEC_MAX_OUTPUT >> 20);
        default: return vm_fail(vm, err, "ssh: %s", strerror(-err));
        }
        int code = st.exit_code;
        if (code == 255 && !vm_running(vm))
                return vm_fail(vm, -ECONNRESET, "the VM stopped (QEMU exited) during the command");
        *ret_status = code;
        return 0;
}

int vm_shell(struct vm *vm, int *ret_status) {
        if (!vm->ready)
                return vm_fail(vm, -ENOTCONN, "the VM is not ready");
        char **argv = vm_ssh_argv(vm, isatty(STDIN_FILENO), NULL);
        /* interactive: in kiln's process group, which owns the terminal */
        struct proc_opts po = {.argv = argv, .envp = vm->env, .stdin_fd = STDIN_FILENO,
                               .stdout_fd = STDOUT_FILENO, .stderr_fd = STDERR_FILENO,
                               .foreground = true, .cancel = vm->o.cancel};
        struct proc_status st;
        int r = proc_run(&po, &st);
        vm_strv_free(argv);
        if (r < 0)
                return vm_fail(vm, r, r == -ENOENT ? "ssh not found (package openssh-client)" : "cannot run ssh: %s",
                               strerror(-r));
        if (st.cancelled)
                return vm_fail(vm, -ECANCELED, "interrupted");
        *ret_status = st.exit_code;
        return 0;
}
