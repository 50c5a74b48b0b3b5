/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox.h — run a command inside an image tree, isolated with Linux
 * namespaces, written against the kernel APIs (no systemd-nspawn).
 *
 * The tree is an overlay: read-only layers (`lower`, topmost first) plus one
 * writable layer (`upper`) that receives every change the command makes —
 * that upper directory is what the step cache stores. With no lower layers,
 * `upper` itself is the tree (used to bootstrap a source).
 *
 * Isolation: new mount, PID, UTS and IPC namespaces, and a new network
 * namespace (loopback only) when network is off. Inside the tree /proc, /sys
 * (read-only), /dev (a tmpfs with null, zero, full, random, urandom, tty and
 * a devpts), /run and /tmp (tmpfs) are prepared, the host's resolv.conf is
 * visible as /etc/resolv.conf, and /usr/sbin/policy-rc.d forbids starting
 * services. None of that ends up in the upper layer: mount points that had
 * to be created are removed again afterwards.
 *
 * Cleanup is structural: the mounts live only in the sandbox's mount
 * namespace and every process in its PID namespace, so when the sandbox
 * ends — normally, by timeout, or because kiln itself was killed
 * (PR_SET_PDEATHSIG on the namespace's init) — the kernel removes them all.
 * Nothing is ever mounted in kiln's own namespace.
 *
 * Requires root (CAP_SYS_ADMIN) for the mounts; see docs/build.md for what
 * works with unprivileged user namespaces.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SANDBOX_MAX_LAYERS 128
/* Open files the command may receive besides stdio (pass_fds). */
#define SANDBOX_MAX_PASS_FDS 4

enum sandbox_mode {
        /* chroot into the tree and exec argv there */
        SANDBOX_CHROOT,
        /* stay in the host's root, with the tree mounted at `mountpoint`
         * (for host-shell, ansible's chroot connection and file copies);
         * /proc, /dev, /sys, /run, /tmp are still prepared inside the tree */
        SANDBOX_HOST,
};

struct sandbox_bind {
        const char *host_path;  /* file or directory on the host */
        const char *tree_path;  /* absolute path inside the tree; must be under /run or /tmp
                                   (tmpfs: nothing reaches the layer) */
        bool read_only;
};

struct sandbox_opts {
        const char *const *lower;  /* read-only layers, topmost first; may be empty */
        size_t nlower;
        const char *upper;         /* writable layer (a directory) */
        const char *work;          /* overlay work dir on the same filesystem as upper */
        const char *mountpoint;    /* an empty directory where the tree is assembled */
        enum sandbox_mode mode;
        bool network;              /* false: a private network namespace with only lo */
        const char *hostname;      /* UTS hostname, default "kiln" */
        char *const *argv;         /* program and arguments (argv[0] looked up in PATH) */
        char *const *envp;         /* complete environment; NULL: a default one */
        const char *cwd;           /* inside the tree (CHROOT) or on the host (HOST) */
        const struct sandbox_bind *binds;
        size_t nbinds;
        int stdin_fd;              /* -1: /dev/null */
        int stdout_fd;             /* -1: /dev/null */
        int stderr_fd;             /* -1: same as stdout_fd */
        /* Open files the command receives as fds 3, 4, ... (at most
         * SANDBOX_MAX_PASS_FDS), e.g. a script it reads as /dev/fd/3: a way
         * to hand over content (a script holding a secret) that never has
         * a name in any file system, so nothing of it outlives the run. */
        const int *pass_fds;
        size_t npass_fds;
        uint64_t timeout_ms;       /* 0: none; on expiry the whole sandbox is killed */
        /* Only the overlay, mounted at `mountpoint` in a private mount
         * namespace: no /proc, /dev, /sys, /run, /tmp, resolv.conf or
         * policy-rc.d are prepared and no mount point is created in the tree,
         * so the tree is exactly its layers (for tools that copy a tree into
         * a filesystem image, e.g. `mkfs.ext4 -d MOUNTPOINT`). Requires mode
         * SANDBOX_HOST (the tree has no /proc to chroot into) and no binds
         * (they live in the /run and /tmp tmpfs); -EINVAL otherwise. The
         * PID/UTS/IPC (and network) namespaces are as usual. */
        bool bare;
};

struct sandbox_result {
        int exit_code;       /* 0-255 when the command exited */
        int signal;          /* the signal that killed it, or 0 */
        bool timed_out;
        uint64_t elapsed_ms;
};

/* Runs opts->argv in the sandbox and waits for it. Returns 0 when the
 * command ran (whatever its exit status, see *ret), or -errno when the
 * sandbox could not be set up (-EPERM without privileges, -ENOENT for a
 * missing layer or program, ...). Never leaves a mount or a process behind.
 * Not thread-safe with respect to other fork()s only in the usual ways;
 * several sandboxes may run at once from different threads. */
int sandbox_run(const struct sandbox_opts *opts, struct sandbox_result *ret);

/* Checks whether sandboxes can be created here (root, overlayfs, namespaces);
 * returns 0 or -errno, with a human explanation in *ret_why (static). */
int sandbox_probe(const char **ret_why);
