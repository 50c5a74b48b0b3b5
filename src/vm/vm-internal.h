/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vm-internal.h — what qemu.c (the VM's life cycle) and ssh.c (commands in
 * the guest) share. Not for callers outside src/vm/: they use vm.h.
 */
#pragma once

#include "vm/vm.h"

#include "base/arch.h"

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

        pid_t pid;                  /* QEMU, or 0 */
        int wait_status;            /* QEMU's status once reaped */
        bool reaped;
        uint64_t start_ms;          /* monotonic, when QEMU was (last) started */
        bool ready;

        struct vm_info info;
        struct strbuf err;
};

uint64_t vm_now_ms(void);

/* Sets vm_error's text (printf-style) and returns r (a -errno). */
_printf_(3, 4) int vm_fail(struct vm *vm, int r, const char *fmt, ...);

/* Starts argv[0] (looked up in PATH) with the given descriptors (-1:
 * /dev/null) as stdin, stdout, stderr; the child dies with kiln
 * (PR_SET_PDEATHSIG) and, with new_pgrp, leads its own process group (so a
 * terminal's Ctrl-C does not reach it and it can be killed as a group).
 * Returns 0 with *ret_pid, or -errno when the program could not be
 * executed (-ENOENT when it is not installed). */
int vm_spawn(char *const argv[], int in_fd, int out_fd, int err_fd, bool new_pgrp, pid_t *ret_pid);

/* Waits for pid, polling every 100 ms for *cancel and the deadline
 * (deadline_ms 0: none). Returns 0 with the wait status, -ECANCELED or
 * -ETIMEDOUT (the child is then killed with SIGKILL and reaped). */
int vm_wait_child(pid_t pid, const volatile sig_atomic_t *cancel, uint64_t deadline_ms, int *ret_status);

/* The ssh argv for the guest: options, user@127.0.0.1, then `command`
 * (NULL: none, for an interactive shell); tty adds -t. NULL-terminated,
 * owned by the caller (free each string and the array: vm_strv_free). */
char **vm_ssh_argv(const struct vm *vm, bool tty, const char *command);
void vm_strv_free(char **v);

/* Exit status from a wait status: the code, or 128+signal. */
int vm_exit_code(int wait_status);
