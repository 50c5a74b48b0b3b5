/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vm.h — boot a disk image in QEMU, wait until the guest is really ready,
 * and run commands in it over SSH.
 *
 * Life cycle of a VM (one object, one private temp dir, one QEMU process):
 *
 *     vm_new(opts)        checks the options, creates the temp dir (0700),
 *                         a throwaway ed25519 key pair (ssh-keygen), the
 *                         NoCloud seed ISO (cidata.h) and, for UEFI, a copy
 *                         of the UEFI variable store
 *     vm_start(vm)        picks the accelerator (KVM only when a probe in a
 *                         child process shows it works, see vm_kvm_probe),
 *                         a free loopback port for SSH, and starts QEMU:
 *                         -snapshot (the image is never written), virtio
 *                         disk, user-mode network with hostfwd to port 22,
 *                         serial console to a log file. QEMU runs in its own
 *                         process group with PR_SET_PDEATHSIG(SIGKILL), so
 *                         it dies with kiln even on kill -9.
 *     vm_wait_ready(vm)   polls the serial log until the guest prints a
 *                         marker carrying a random nonce (written by
 *                         cloud-init's runcmd from the seed's user-data: it
 *                         proves the seed was applied and the boot finished),
 *                         then retries an SSH login until it succeeds. Fails
 *                         fast when QEMU exits; bounded by opts.timeout_s.
 *     vm_boot_state(vm)   waits (bounded) for systemd to finish the boot and
 *                         reads its verdict: "running", or "degraded" with
 *                         the failed units (state.c)
 *     vm_exec(vm, ...)    runs a shell command as root in the guest
 *     vm_free(vm)         kills QEMU (SIGTERM, then SIGKILL after a short
 *                         grace), waits for it and removes the temp dir —
 *                         always, whatever state the VM is in.
 *
 * Errors: every function returns >= 0 on success or -errno, and leaves a
 * human-readable explanation in vm_error(vm) (the library never prints).
 * The common codes:
 *   -EINVAL      bad option (missing image, unknown firmware/accel value,
 *                unknown architecture, BIOS for an architecture without one)
 *   -ENOENT      the image, QEMU, the UEFI firmware (OVMF, AAVMF) or
 *                ssh/ssh-keygen is missing
 *   -ECHILD      QEMU exited before the guest was ready (vm_error has the
 *                reason; vm_console_tail gives the end of the serial log)
 *   -ETIMEDOUT   not ready (or a command not finished) within the deadline
 *   -ECANCELED   *opts.cancel became non-zero (a signal arrived)
 *   -EADDRINUSE  no free port for SSH after several attempts
 *   -E2BIG       a command's output exceeded VM_EXEC_MAX_OUTPUT
 *
 * Signals: the caller (the CLI) installs SIGINT/SIGTERM handlers that set a
 * flag and points opts.cancel at it; every wait in this module polls that
 * flag at least every 100 ms and returns -ECANCELED, after which the caller
 * calls vm_free. Handlers must be installed without SA_RESTART.
 *
 * Not thread-safe per VM; several VMs may run at once (each has its own
 * port, temp dir and QEMU). PR_SET_PDEATHSIG is tied to the *thread* that
 * forked: call vm_start (and vm_exec) from a thread that outlives the VM,
 * or QEMU is killed when that thread exits.
 */
#pragma once

#include "base/strbuf.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum vm_firmware {
        VM_FIRMWARE_BIOS, /* the arch's legacy BIOS, QEMU's default (SeaBIOS on x86_64) */
        VM_FIRMWARE_UEFI, /* the arch's UEFI code read-only + a private copy of its
                             variable store (OVMF_CODE_4M.fd, OVMF_VARS_4M.fd on x86_64) */
};

enum vm_accel {
        VM_ACCEL_AUTO, /* KVM when vm_kvm_probe says it works, else TCG */
        VM_ACCEL_KVM,  /* KVM without probing (fails if QEMU cannot use it) */
        VM_ACCEL_TCG,  /* software emulation */
};

/* Output of one vm_exec is capped at this many bytes (stdout + stderr). */
#define VM_EXEC_MAX_OUTPUT (64u << 20)

struct vm_options {
        const char *image;          /* required: disk image (raw or qcow2; format probed
                                       with qemu-img); opened read-only via -snapshot */
        const char *arch;           /* the guest's architecture, a kiln name from
                                       base/arch.h's table; NULL: the default (x86_64).
                                       QEMU's binary, machine, CPU, firmware and console
                                       come from its row */
        enum vm_firmware firmware;
        enum vm_accel accel;
        unsigned memory_mib;        /* 0: 1024 */
        unsigned cpus;              /* 0: 2 */
        const char *console_log;    /* keep the serial console here (created/truncated);
                                       NULL: a file in the temp dir, removed by vm_free */
        const char *extra_iso;      /* optional extra read-only CD-ROM attached after the
                                       seed (e.g. check scripts); must not be labelled
                                       "cidata" (cloud-init would pick one of the two) */
        const char *hostname;       /* guest hostname set through the seed; NULL:
                                       "kiln-" + 8 random hex digits */
        unsigned timeout_s;         /* readiness deadline for vm_wait_ready; 0: 600 under
                                       TCG, 180 with KVM */
        unsigned exec_timeout_s;    /* deadline per vm_exec; 0: none */
        const char *tmp_parent;     /* where the temp dir is made; NULL: $TMPDIR or /tmp */
        const char *qemu;           /* QEMU binary; NULL: the arch's (qemu-system-x86_64)
                                       from PATH */
        const char *tag;            /* optional: added to QEMU's command line as
                                       -name TAG, so tests can find the process */
        const volatile sig_atomic_t *cancel; /* optional, see "Signals" above */
};

struct vm;

/* Facts about a VM, valid from vm_new (or, for fields set later, from the
 * call that sets them) until vm_free. All strings are owned by the VM. */
struct vm_info {
        const char *hostname;       /* from vm_new */
        const char *user;           /* "root": the seed authorises the key for root */
        const char *key_path;       /* private key, from vm_new (inside the temp dir) */
        const char *tmp_dir;        /* from vm_new */
        const char *console_log;    /* from vm_new */
        enum vm_accel accel;        /* from vm_start: KVM or TCG (never AUTO) */
        const char *accel_note;     /* from vm_start: why KVM is not used when accel was
                                       AUTO, e.g. "KVM_RUN did not return within 2 s";
                                       NULL when KVM is used or TCG was asked for */
        unsigned ssh_port;          /* from vm_start: 127.0.0.1:ssh_port → guest:22 */
        pid_t qemu_pid;             /* from vm_start; 0 once QEMU was reaped */
        uint64_t ready_ms;          /* from vm_wait_ready: vm_start → marker seen */
        uint64_t ssh_ms;            /* from vm_wait_ready: vm_start → first SSH login */
};

/* Creates a VM (not yet started). *ret is set even on failure (unless it is
 * -EINVAL for a NULL image/ret), so vm_error can explain; free it with
 * vm_free either way. opts is copied. */
int vm_new(const struct vm_options *opts, struct vm **ret);

/* Starts QEMU. On a host-forwarding port race (another process took the
 * port between kiln's probe and QEMU's bind) retries with a new port. */
int vm_start(struct vm *vm);

/* Waits for the readiness marker on the serial console, then for a working
 * SSH login. 0 when ready. */
int vm_wait_ready(struct vm *vm);

/* Runs `command` as root in the guest over SSH: sshd hands the string to
 * root's login shell with -c (bash on Debian), so it is a shell script.
 *   stdin_data/len   fed to the command's stdin (NULL: empty stdin)
 *   out              NULL: the command's stdout/stderr go to kiln's own;
 *                    else both are appended to out (interleaved as written),
 *                    at most VM_EXEC_MAX_OUTPUT bytes (-E2BIG past that)
 *   ret_status       the command's exit status (0-255; 128+N for a signal
 *                    N); 255 is also what ssh reports when the connection
 *                    failed — vm_exec then returns -ECONNRESET instead when
 *                    QEMU is gone
 * Returns 0 when the command ran (whatever its status) or -errno. */
int vm_exec(struct vm *vm, const char *command, const void *stdin_data, size_t stdin_len,
            struct strbuf *out, int *ret_status);

/* ---- how the boot ended (state.c) ----------------------------------------- */

/* After readiness, how long the guest's systemd may at least take to finish
 * its boot jobs (`systemctl is-system-running --wait`), in seconds; longer
 * when the readiness deadline leaves more. */
#define VM_SETTLE_TIMEOUT_S 180
/* Failed units kept by vm_boot_state (more are only counted), and the
 * longest unit name accepted (systemd's UNIT_NAME_MAX). */
#define VM_FAILED_UNITS_MAX 64
#define VM_UNIT_NAME_MAX 255
#define VM_STATE_WORD_MAX 31

/* systemd's verdict on a finished boot. */
struct vm_boot_state {
        /* is-system-running's word: "running", "degraded", "starting" (the
         * boot had not finished within the wait), "maintenance", ...;
         * "none" when the guest has no systemctl, "unknown" when it said
         * nothing. */
        char state[VM_STATE_WORD_MAX + 1];
        char **failed;              /* failed units (`systemctl --failed`), NULL-terminated; owned */
        size_t nfailed;
        size_t nomitted;            /* failed units past VM_FAILED_UNITS_MAX */
};

/* Waits (at most wait_s seconds; 0: what is left of the readiness deadline,
 * at least VM_SETTLE_TIMEOUT_S) for the ready
 * guest's boot to finish, then reads its state and failed units over SSH.
 * 0 with *ret filled (free with vm_boot_state_done), or -errno with
 * vm_error set (-ETIMEDOUT: no answer in time, -EBADMSG: no state line). */
int vm_boot_state(struct vm *vm, unsigned wait_s, struct vm_boot_state *ret);
/* Parses the output of vm_boot_state's guest script: the line
 * "kiln-state: WORD" and "kiln-failed: UNIT LOAD ACTIVE SUB DESCRIPTION"
 * lines (systemctl's --plain --no-legend listing, an optional leading
 * bullet); every other line is ignored, as are unit names that are not
 * systemd's (characters, length). -EBADMSG without a state line. */
int vm_boot_state_parse(const char *output, struct vm_boot_state *ret);
void vm_boot_state_done(struct vm_boot_state *s);

/* An interactive SSH session (a TTY, kiln's stdin/stdout/stderr); the
 * remote shell's exit status in *ret_status. */
int vm_shell(struct vm *vm, int *ret_status);

/* The ssh command line that reaches the guest (for "connect with: ...").
 * Owned by the caller. NULL before vm_start. */
char *vm_ssh_command_line(const struct vm *vm);

const struct vm_info *vm_info(const struct vm *vm);

/* The last error's explanation ("" when none); owned by the VM. */
const char *vm_error(const struct vm *vm);

/* The last `lines` lines of the serial console (CRs stripped, control
 * characters replaced). Owned by the caller. */
char *vm_console_tail(const struct vm *vm, unsigned lines);

/* True while QEMU runs (reaps it when it has exited). */
bool vm_running(struct vm *vm);

/* Stops QEMU (SIGTERM to its process group, SIGKILL after 5 s) and waits
 * for it. Idempotent. The temp dir stays until vm_free. */
int vm_stop(struct vm *vm);

/* vm_stop, then removes the temp dir (also the seed and key) and frees the
 * VM. The console log named by opts.console_log is kept. NULL-safe; returns
 * NULL. */
struct vm *vm_free(struct vm *vm);

static inline void vm_freep(struct vm **vm) { vm_free(*vm); }
#define _cleanup_vm_ _cleanup_(vm_freep)

/* Checks that KVM really runs guest code: in a child process, creates a VM
 * with the KVM ioctls and runs a few real-mode instructions; then boots
 * QEMU with -accel kvm -cpu host on a one-sector guest that waits for three
 * BIOS timer ticks and exits QEMU through isa-debug-exit. Each stage has a
 * deadline of timeout_ms (the child is killed past it). 0 when KVM works; -errno
 * otherwise with a short reason in *ret_reason (a static string: never free
 * it). The result is remembered for the life of the process. */
int vm_kvm_probe(unsigned timeout_ms, const char **ret_reason);

/* Parse "bios"/"uefi" and "auto"/"kvm"/"tcg"; -EINVAL for anything else. */
int vm_firmware_from_string(const char *s, enum vm_firmware *ret);
int vm_accel_from_string(const char *s, enum vm_accel *ret);
const char *vm_accel_to_string(enum vm_accel a);
const char *vm_firmware_to_string(enum vm_firmware f);
