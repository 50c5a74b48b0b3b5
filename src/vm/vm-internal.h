/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vm-internal.h — what qemu.c (the VM's life cycle) and ssh.c (commands in
 * the guest) share. Not for callers outside src/vm/: they use vm.h.
 */
#pragma once

#include "os/proc.h"
#include "vm/vm.h"

#include "base/arch.h"
#include "base/clock.h"

#include <stdint.h>

struct vm {
        struct vm_options o;        /* strings below are owned copies */
        char *image;
        char *console_log;
        char *extra_iso;
        char *tmp_parent;
        char *qemu;
        char *tag;
        const struct arch *arch;    /* from opts->arch (base/arch.h's table) */

        char *tmp_dir;
        char *key_path;             /* private key; key_path + ".pub" the public one */
        char *seed_path;
        char *vars_path;            /* UEFI variable store copy, NULL for BIOS */
        char *qemu_log;             /* QEMU's own stdout/stderr */
        char *hostname;
        char *marker;               /* readiness marker ("kiln-ready-" + nonce) */
        const char *format;         /* "raw" or "qcow2" */
        char *accel_note;

        struct proc qemu_proc;      /* QEMU (qemu_proc.pid 0 once reaped) */
        int exit_code;              /* QEMU's once reaped: status or 128 + signal */
        char **env;                 /* the environment of every program started (vm_tool_env) */
        uint64_t start_ms;          /* monotonic, when QEMU was (last) started */
        bool ready;

        struct vm_info info;
        struct strbuf err;
};

/* Sets vm_error's text (printf-style) and returns r (a -errno). */
_printf_(3, 4) int vm_fail(struct vm *vm, int r, const char *fmt, ...);

/* The environment for programs started for a VM (owned: proc_env_free). */
char **vm_tool_env(void);

/* Runs argv with vm->env, output to out_fd (or PROC_NULL), until it ends
 * or deadline_ms (0: none) or *vm->o.cancel (it is then stopped: SIGTERM,
 * SIGKILL after the grace). Returns 0 with *ret_code (exit status, or 128
 * + signal), -ETIMEDOUT, -ECANCELED, or proc_spawn's -errno (-ENOENT: not
 * installed). */
int vm_run(struct vm *vm, char *const argv[], int out_fd, uint64_t deadline_ms, int *ret_code);

/* The ssh argv for the guest: options, user@127.0.0.1, then `command`
 * (NULL: none, for an interactive shell); tty adds -t. NULL-terminated,
 * owned by the caller (free each string and the array: vm_strv_free). */
char **vm_ssh_argv(const struct vm *vm, bool tty, const char *command);
void vm_strv_free(char **v);
