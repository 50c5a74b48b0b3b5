/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox.c — run a command in an image tree, isolated with namespaces.
 *
 * Processes. sandbox_run (in kiln, any thread) forks a *helper*:
 *
 *   kiln ──fork── helper ──fork── init (pid 1) ──fork── command (pid 2)
 *                   │                │
 *                   │ new mount ns A │ new mount ns B (a copy of A)
 *                   │ new PID/UTS/IPC(/net) namespaces, shared by all three
 *
 *   helper  unshares the namespaces, makes every mount private (so nothing
 *           propagates back to kiln's namespace), mounts the tree (overlay of
 *           the layers, or a bind of `upper` when there are no lower layers)
 *           at the mountpoint — in namespace A only — creates the mount
 *           points the tree lacks (recording each one), sets the hostname,
 *           brings `lo` up, forks init and waits. When init is gone it
 *           removes the mount points it created and exits.
 *   init    is pid 1 of the new PID namespace. It unshares mount namespace B
 *           and mounts /proc, /sys, /dev, /run, /tmp, resolv.conf,
 *           policy-rc.d and the caller's binds there, forks the command and
 *           reaps every process (orphans are re-parented to it) until the
 *           command exits; then it reports the command's wait status and
 *           exits, and the kernel kills whatever is left in the namespace.
 *   command chroots into the tree (SANDBOX_CHROOT) or stays in the host root
 *           (SANDBOX_HOST), sets up stdio and execs.
 *
 * Why two mount namespaces: the placeholders created in the tree (say an
 * empty /etc/resolv.conf) are mount points in B but plain files in A. Once
 * B has died with its last process, the helper deletes them through the
 * merged overlay view, which does the right thing for every layer layout
 * (removes an upper-only file; a whiteout is never needed because a
 * placeholder is only created where the merged tree had nothing). Directories
 * copied up on the way (upper/etc, upper/usr/sbin) stay as empty copies.
 *
 * Invariants.
 *  - Nothing is mounted in kiln's namespace: every mount happens after
 *    unshare(CLONE_NEWNS) + MS_REC|MS_PRIVATE on "/". The mounts die with
 *    the namespaces' last process: no unmounting code, nothing to leak.
 *  - sandbox_run returns only after the helper is reaped, and the helper
 *    exits only after init is reaped; the kernel reaps init only after every
 *    other process of its PID namespace is gone (zap_pid_ns_processes). So
 *    when sandbox_run returns, no sandboxed process and no mount remains.
 *  - Every fd is O_CLOEXEC; the helper closes the fds it inherited from kiln
 *    that it does not need (other threads' pipes, other sandboxes' fds), and
 *    the command marks everything above stdio and its pass_fds close-on-exec.
 *  - Nothing follows a symlink of the tree outside it: paths inside the tree
 *    are resolved with openat2(RESOLVE_IN_ROOT) or by tree_resolve (same
 *    rules, for paths that do not exist yet), and mounts target O_PATH fds
 *    (move_mount) instead of path strings.
 *  - Between fork and exec only async-signal-safe calls: strings and arrays
 *    are prepared before fork (struct plan), and the children format with
 *    the small buf_* helpers below, never printf or malloc.
 *
 * Killing. kiln -> helper: PR_SET_PDEATHSIG(SIGTERM); helper -> init:
 * PR_SET_PDEATHSIG(SIGKILL). The helper blocks all signals and watches a
 * signalfd for SIGTERM (kiln died, or the timeout in sandbox_run fired) and
 * SIGCHLD; on SIGTERM it SIGKILLs init (the whole PID namespace dies), waits
 * for it and removes its placeholders. If the helper itself does not exit
 * within KILL_GRACE_MS of a timeout, sandbox_run SIGKILLs it (init follows
 * through its death signal; placeholders then stay in `upper`). The timeout
 * counts from the call, setup included.
 *
 * Errors travel on a CLOEXEC pipe as fixed-size messages (atomic writes,
 * smaller than PIPE_BUF): MSG_ERROR {errno, stage} from whichever process
 * failed, MSG_STATUS {wait status} from init. A program that cannot be
 * executed (not found in PATH, not executable) is a setup error:
 * sandbox_run returns -ENOENT / -EACCES, as the header promises, rather than
 * an exit code 127.
 *
 * Mounts inside the tree, and why:
 *   /proc       a new procfs for the new PID namespace (ps, /proc/self);
 *               /proc/sys and /proc/sysrq-trigger read-only, since most
 *               sysctls are global: a postinst must not retune the host
 *   /sys        sysfs read-only (in a new net ns it shows only that ns's
 *               devices); if it cannot be mounted, a read-only bind of the
 *               host's /sys
 *   /dev        a tmpfs with null zero full random urandom tty bound from the
 *               host (binds work where mknod is not allowed), a new devpts
 *               instance with /dev/ptmx, /dev/shm, and the fd/std* symlinks:
 *               the host's /dev would expose its disks to package scripts
 *   /run /tmp   tmpfs: state that must not end up in the layer
 *   /etc/resolv.conf       the host's, read-only, so apt can resolve names; a
 *               tree whose resolv.conf is a symlink into /run or /tmp (e.g.
 *               systemd-resolved's stub) gets the file created in the tmpfs
 *   /usr/sbin/policy-rc.d  "exit 101", read-only: package scripts must not
 *               start services in a build
 *   binds       the caller's, only under /run or /tmp (tmpfs: mount points
 *               created for them never reach the layer)
 *
 * Requirements: Linux 5.12 or later (openat2, the new mount API with
 * mount_setattr, pidfd_open, close_range with CLOSE_RANGE_CLOEXEC), root.
 * Layer paths are passed to overlayfs as /proc/self/fd/N of fds opened in
 * the helper, so the overlay option string stays well under its one-page
 * limit for SANDBOX_MAX_LAYERS layers whatever the paths, and no path needs
 * escaping of ',' or ':'. The overlay is mounted with index, metacopy and
 * redirect_dir off so that an upper layer is a self-contained diff (renaming
 * a lower directory gets EXDEV and tools fall back to copying).
 *
 * Bare sandboxes (opts->bare) stop after the overlay: the helper creates no
 * mount points and init only unshares its mount namespace, so the tree seen
 * at the mountpoint is exactly the layers (what `mkfs.ext4 -d` should copy).
 *
 * On a signal, exit_code is 128 + signal, as in a shell, so that exit_code
 * alone tells success from failure; on a timeout the command counts as
 * killed by SIGKILL. The command runs in a new session (setsid) without a
 * controlling terminal.
 *
 * Caveats. Created mount-point directories are removed when still empty,
 * so a bootstrap into an empty upper ends without /proc, /sys, /dev, /run,
 * /tmp unless the command put something in them (it cannot: they are
 * covered by mounts) — whoever assembles an image must create them. When
 * the helper is SIGKILLed (not by kiln's death, which sends SIGTERM, but
 * after KILL_GRACE_MS), its placeholders stay in `upper`.
 */
#include "os/sandbox.h"

#include "base/clock.h"
#include "base/util.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

#define DEFAULT_HOSTNAME "kiln"
#define OVL_OPTS_MAX 4096   /* mount(2) copies at most one page of options */
#define MAX_PLACEHOLDERS 32 /* mount points created in the tree, per run */
#define KILL_GRACE_MS 5000  /* helper's time to clean up after SIGTERM */
#define POLICY_RC_D "#!/bin/sh\nexit 101\n"
#define POLICY_TMP_NAME ".kiln-policy-rc.d"

/* ---- messages from the sandbox processes to sandbox_run ---------------- */

enum { MSG_ERROR = 1, MSG_STATUS = 2 };

struct msg {
        int32_t kind;
        int32_t value;  /* MSG_ERROR: errno; MSG_STATUS: wait status */
        char stage[56]; /* MSG_ERROR: what failed, for a debugger or strace */
};
_Static_assert(sizeof(struct msg) <= PIPE_BUF, "messages must be written atomically");

static void send_msg(int fd, int kind, int value, const char *stage) {
        struct msg m = {.kind = kind, .value = value};
        if (stage)
                memcpy(m.stage, stage, strnlen(stage, sizeof m.stage - 1));
        while (write(fd, &m, sizeof m) < 0 && errno == EINTR)
                ;
}

/* ---- what the children need, prepared before fork ---------------------- */

struct plan {
        const struct sandbox_opts *o;
        char *const *envp;
        const char *hostname;
        pid_t kiln_pid;
        int msg_fd; /* write end */
        char term[72];
        char *default_env[6];
};

/* Created mount points, deleted again by the helper (newest first). */
struct placeholder {
        int dirfd; /* O_PATH fd of the parent directory, in the helper's namespace */
        bool is_dir;
        char name[NAME_MAX + 1];
};

struct placeholders {
        struct placeholder v[MAX_PLACEHOLDERS];
        size_t n;
};

/* Canonical tree-relative paths of /run and /tmp (usually "run" and "tmp");
 * files under them live in a tmpfs and need no placeholder. */
struct tmpfs_dirs {
        char run[PATH_MAX];
        char tmp[PATH_MAX];
};

/* ---- async-signal-safe string building --------------------------------- */

struct buf {
        char *p;
        size_t cap, len;
        bool overflow;
};

static void buf_adds(struct buf *b, const char *s) {
        size_t n = strlen(s);
        if (b->overflow || b->len + n >= b->cap) {
                b->overflow = true;
                return;
        }
        memcpy(b->p + b->len, s, n + 1);
        b->len += n;
}

static void buf_addu(struct buf *b, unsigned long v) {
        char tmp[24];
        size_t i = sizeof tmp;
        tmp[--i] = 0;
        do
                tmp[--i] = (char)('0' + v % 10);
        while (v /= 10);
        buf_adds(b, tmp + i);
}

static void buf_add_fdpath(struct buf *b, int fd) {
        buf_adds(b, "/proc/self/fd/");
        buf_addu(b, (unsigned)fd);
}

/* ---- small system helpers ---------------------------------------------- */

static int neg_errno(long r) { return r < 0 ? -errno : (int)r; }

static int xopenat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve) {
        struct open_how how = {.flags = flags | O_CLOEXEC, .resolve = resolve};
        return neg_errno(syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

/* Opens a directory of the tree as an O_PATH fd, resolving like a process
 * chrooted into the tree would (absolute symlinks and ".." stay inside). */
static int tree_open_dir(int rootfd, const char *path) {
        return xopenat2(rootfd, path, O_PATH | O_DIRECTORY,
                        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

static void pop_component(char *out, size_t *len) {
        while (*len > 0 && out[*len - 1] != '/')
                (*len)--;
        if (*len > 0)
                (*len)--; /* the '/' */
        out[*len] = 0;
}

/* Resolves `path` (relative to the tree root at rootfd) the way a process
 * chrooted into the tree would, also when its last components do not exist:
 * symlinks are followed (at most 40), absolute ones and ".." never leave the
 * tree. Writes the canonical tree-relative path (no leading '/', no
 * symlinks, "" for the root) to out. Returns 1 when it exists, 0 when a
 * component is missing (the rest is appended as written), or -errno. */
static int tree_resolve(int rootfd, const char *path, char out[PATH_MAX]) {
        char rest[PATH_MAX], link[PATH_MAX], tmp[PATH_MAX];
        size_t olen = 0, n;
        unsigned hops = 0;
        bool missing = false;
        struct stat st;

        if (strlen(path) >= sizeof rest)
                return -ENAMETOOLONG;
        strcpy(rest, path);
        out[0] = 0;
        for (const char *p = rest;;) {
                while (*p == '/')
                        p++;
                if (!*p)
                        return missing ? 0 : 1;
                const char *end = strchrnul(p, '/');
                n = (size_t)(end - p);
                if (n == 1 && p[0] == '.') {
                        p = end;
                        continue;
                }
                if (n == 2 && p[0] == '.' && p[1] == '.') {
                        pop_component(out, &olen);
                        p = end;
                        continue;
                }
                size_t prev = olen;
                if (olen + 1 + n >= PATH_MAX)
                        return -ENAMETOOLONG;
                if (olen)
                        out[olen++] = '/';
                memcpy(out + olen, p, n);
                olen += n;
                out[olen] = 0;
                p = end;
                if (missing)
                        continue;
                /* every component of out but the last is a real directory,
                 * so this lookup follows no symlink */
                if (fstatat(rootfd, out, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT)
                                return -errno;
                        missing = true;
                        continue;
                }
                if (!S_ISLNK(st.st_mode))
                        continue;
                if (++hops > 40)
                        return -ELOOP;
                ssize_t l = readlinkat(rootfd, out, link, sizeof link - 1);
                if (l < 0)
                        return -errno;
                link[l] = 0;
                olen = link[0] == '/' ? 0 : prev;
                out[olen] = 0;
                size_t rl = strlen(p);
                if ((size_t)l + 1 + rl >= sizeof tmp)
                        return -ENAMETOOLONG;
                memcpy(tmp, link, (size_t)l);
                tmp[l] = '/';
                memcpy(tmp + l + 1, p, rl + 1);
                memcpy(rest, tmp, (size_t)l + 1 + rl + 1);
                p = rest;
        }
}

static bool path_under(const char *path, const char *dir) {
        size_t n = strlen(dir);
        return n > 0 && strncmp(path, dir, n) == 0 && path[n] == '/';
}

static bool in_tmpfs(const struct tmpfs_dirs *t, const char *canon) {
        return path_under(canon, t->run) || path_under(canon, t->tmp);
}

static int tmpfs_dirs_resolve(int rootfd, struct tmpfs_dirs *t) {
        int r = tree_resolve(rootfd, "run", t->run);
        if (r >= 0)
                r = tree_resolve(rootfd, "tmp", t->tmp);
        return r < 0 ? r : 0;
}

static int placeholder_add(struct placeholders *ph, int dirfd, const char *name, bool is_dir) {
        if (ph->n >= MAX_PLACEHOLDERS || strlen(name) > NAME_MAX)
                return -E2BIG;
        int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        struct placeholder *e = &ph->v[ph->n++];
        e->dirfd = fd;
        e->is_dir = is_dir;
        strcpy(e->name, name);
        return 0;
}

/* Deletes what placeholder_add recorded, newest first: files only while
 * still empty, directories only while empty (a command may have filled a
 * directory the tree lacked, e.g. when bootstrapping into an empty upper). */
static void placeholders_remove(struct placeholders *ph) {
        struct stat st;
        while (ph->n > 0) {
                struct placeholder *e = &ph->v[--ph->n];
                if (e->is_dir)
                        (void)unlinkat(e->dirfd, e->name, AT_REMOVEDIR);
                else if (fstatat(e->dirfd, e->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                         S_ISREG(st.st_mode) && st.st_size == 0)
                        (void)unlinkat(e->dirfd, e->name, 0);
                close(e->dirfd);
        }
}

/* Walks the canonical relative path `path` (no symlinks, no "." or "..")
 * from dirfd, creating what is missing: directories (0755), and the last
 * component as `type` (S_IFDIR, or S_IFREG: an empty file). No step follows
 * a symlink; RESOLVE_NO_XDEV in `resolve` also keeps the walk on one mount.
 * Records what it creates in ph when not NULL. Returns an O_PATH fd of the
 * last component (which must be a directory for S_IFDIR and must not be one
 * for S_IFREG), or -errno. */
static int tree_mkpath(int dirfd, const char *path, mode_t type, uint64_t resolve,
                       struct placeholders *ph) {
        char comp[PATH_MAX];
        int dfd, fd, r;

        if (strlen(path) >= sizeof comp)
                return -ENAMETOOLONG;
        strcpy(comp, path);
        dfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (dfd < 0)
                return -errno;
        for (char *s = comp;;) {
                char *slash = strchr(s, '/');
                bool last = !slash;
                if (slash)
                        *slash = 0;
                bool want_dir = !last || type == S_IFDIR;
                uint64_t how = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | resolve;
                uint64_t flags = O_PATH | O_NOFOLLOW | (want_dir ? O_DIRECTORY : 0);

                fd = xopenat2(dfd, s, flags, how);
                if (fd == -ENOENT) {
                        r = want_dir ? mkdirat(dfd, s, 0755) : mknodat(dfd, s, S_IFREG | 0644, 0);
                        if (r < 0) {
                                fd = -errno;
                                break;
                        }
                        if (ph) {
                                r = placeholder_add(ph, dfd, s, want_dir);
                                if (r < 0) {
                                        (void)unlinkat(dfd, s, want_dir ? AT_REMOVEDIR : 0);
                                        fd = r;
                                        break;
                                }
                        }
                        fd = xopenat2(dfd, s, flags, how);
                }
                if (fd < 0 || last)
                        break;
                close(dfd);
                dfd = fd;
                s = slash + 1;
        }
        close(dfd);
        if (fd >= 0 && type != S_IFDIR) {
                struct stat st;
                r = fstat(fd, &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? -EISDIR : 0;
                if (r < 0) {
                        close(fd);
                        return r;
                }
        }
        return fd;
}

/* ---- mounting (new mount API: every target is an fd) ------------------- */

/* Attaches the detached mount (tree) mnt onto target. */
static int move_onto(int mnt, int target) {
        return neg_errno(move_mount(mnt, "", target, "",
                                    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH));
}

/* Mounts a new `fstype` on target. kv: key, value pairs ending with NULL; a
 * NULL value sets a flag. Returns the mount's fd in *ret_mnt (when not NULL;
 * usable as a directory fd for its root) or closes it. */
static int fs_mount(int target, const char *fstype, const char *const *kv, unsigned attrs,
                    int *ret_mnt) {
        int fs, mnt = -1, r = 0;

        fs = fsopen(fstype, FSOPEN_CLOEXEC);
        if (fs < 0)
                return -errno;
        for (; kv && kv[0]; kv += 2) {
                if (kv[1] ? fsconfig(fs, FSCONFIG_SET_STRING, kv[0], kv[1], 0)
                          : fsconfig(fs, FSCONFIG_SET_FLAG, kv[0], NULL, 0)) {
                        r = -errno;
                        goto out;
                }
        }
        if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0 ||
            (mnt = fsmount(fs, FSMOUNT_CLOEXEC, attrs)) < 0)
                r = -errno;
        else
                r = move_onto(mnt, target);
out:
        close(fs);
        if (r == 0 && ret_mnt)
                *ret_mnt = mnt;
        else if (mnt >= 0)
                close(mnt);
        return r;
}

/* Sets mount attributes attrs (e.g. MOUNT_ATTR_RDONLY) on the detached tree
 * from open_tree and attaches it onto target. */
static int attach_tree(int tree, int target, unsigned attrs, bool recursive) {
        struct mount_attr a = {.attr_set = attrs};
        if (attrs && mount_setattr(tree, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a,
                                   sizeof a) < 0)
                return -errno;
        return move_onto(tree, target);
}

/* Binds (srcdir, src) onto target with mount attributes attrs; `recursive`
 * includes the mounts below src. */
static int bind_at(int target, int srcdir, const char *src, unsigned attrs, bool recursive) {
        unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
        int t = open_tree(srcdir, src, flags);
        if (t < 0)
                return -errno;
        int r = attach_tree(t, target, attrs, recursive);
        close(t);
        return r;
}

/* ---- the command (pid 2) ------------------------------------------------ */

_noreturn_ static void command_main(const struct plan *p) {
        const struct sandbox_opts *o = p->o;
        int fds[3 + SANDBOX_MAX_PASS_FDS] = {o->stdin_fd, o->stdout_fd,
                                             o->stderr_fd >= 0 ? o->stderr_fd : o->stdout_fd};
        int nfds = 3 + (int)o->npass_fds; /* validate() bounds npass_fds */
        int devnull = -1;
        const char *stage = "stdio";
        sigset_t none;

        for (int i = 3; i < nfds; i++)
                fds[i] = o->pass_fds[i - 3];
        for (int i = 0; i < nfds; i++) {
                if (fds[i] < 0) {
                        if (devnull < 0 && (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
                                goto fail;
                        fds[i] = devnull;
                }
                /* out of the way of the dup2s below */
                if (fds[i] < nfds && (fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, nfds)) < 0)
                        goto fail;
        }
        for (int i = 0; i < nfds; i++) /* dup2 clears close-on-exec on the copy */
                if (dup2(fds[i], i) < 0)
                        goto fail;
        stage = "close fds";
        if (close_range((unsigned)nfds, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                goto fail;
        (void)setsid();
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL); /* handlers were reset by the helper */
        if (o->mode == SANDBOX_CHROOT) {
                stage = "chroot";
                if (chroot(o->mountpoint) < 0 || chdir("/") < 0)
                        goto fail;
                stage = "chdir";
                if (o->cwd && chdir(o->cwd) < 0)
                        goto fail;
        } else {
                stage = "chdir";
                if (chdir(o->cwd ? o->cwd : o->mountpoint) < 0)
                        goto fail;
        }
        stage = "exec";
        environ = (char **)p->envp; /* execvpe searches the PATH of environ */
        execvpe(o->argv[0], o->argv, p->envp);
fail:
        send_msg(p->msg_fd, MSG_ERROR, errno, stage);
        _exit(127);
}

/* ---- init (pid 1): the mounts of namespace B ---------------------------- */

/* An O_PATH fd of the non-directory at `path` in the tree, to mount a file
 * on. The helper created it unless it resolves into /run or /tmp, where it
 * is created now (in the tmpfs). */
static int init_file_target(int rootfd, const struct tmpfs_dirs *t, const char *path) {
        char canon[PATH_MAX];
        int r = tree_resolve(rootfd, path, canon);
        if (r < 0)
                return r;
        if (r == 0 && !in_tmpfs(t, canon))
                return -ENOENT;
        return tree_mkpath(rootfd, canon, S_IFREG, 0, NULL);
}

/* Creates `name` in dir (a directory when fstype is set, else an empty
 * file) and mounts a new fstype there, or binds the host's `src`. */
static int mount_in(int dir, const char *name, const char *fstype, const char *const *kv,
                    const char *src, unsigned attrs) {
        int fd, r;

        r = neg_errno(fstype ? mkdirat(dir, name, 0755) : mknodat(dir, name, S_IFREG | 0644, 0));
        if (r < 0)
                return r;
        fd = xopenat2(dir, name, O_PATH | O_NOFOLLOW | (fstype ? O_DIRECTORY : 0), RESOLVE_BENEATH);
        if (fd < 0)
                return fd;
        if (fstype)
                r = fs_mount(fd, fstype, kv, attrs, NULL);
        else
                r = bind_at(fd, AT_FDCWD, src, attrs, false);
        close(fd);
        return r;
}

static int init_setup_dev(int rootfd) {
        static const char *const nodes[] = {"/dev/null", "/dev/zero", "/dev/full",
                                            "/dev/random", "/dev/urandom", "/dev/tty"};
        static const char *const links[][2] = {{"pts/ptmx", "ptmx"},
                                               {"/proc/self/fd", "fd"},
                                               {"/proc/self/fd/0", "stdin"},
                                               {"/proc/self/fd/1", "stdout"},
                                               {"/proc/self/fd/2", "stderr"}};
        static const char *const dev_opts[] = {"mode", "755", "size", "4m", NULL};
        static const char *const pts_opts[] = {"newinstance", NULL, "ptmxmode", "0666",
                                               "mode", "620", "gid", "5", NULL};
        static const char *const shm_opts[] = {"mode", "1777", NULL};
        int target, dev = -1, r;

        target = tree_open_dir(rootfd, "dev");
        if (target < 0)
                return target;
        r = fs_mount(target, "tmpfs", dev_opts, MOUNT_ATTR_NOSUID, &dev);
        close(target);
        for (size_t i = 0; i < ARRAY_SIZE(nodes) && r >= 0; i++)
                r = mount_in(dev, nodes[i] + strlen("/dev/"), NULL, NULL, nodes[i],
                             MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
        if (r >= 0)
                r = mount_in(dev, "pts", "devpts", pts_opts, NULL,
                             MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
        if (r >= 0)
                r = mount_in(dev, "shm", "tmpfs", shm_opts, NULL,
                             MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
        for (size_t i = 0; i < ARRAY_SIZE(links) && r >= 0; i++)
                r = neg_errno(symlinkat(links[i][0], dev, links[i][1]));
        if (dev >= 0)
                close(dev);
        return r < 0 ? r : 0;
}

/* A procfs for the new PID namespace, with /proc/sys and
 * /proc/sysrq-trigger read-only: most sysctls are not namespaced, and a
 * package script must not retune the build host's kernel. */
static int init_proc(int rootfd) {
        static const char *const ro_paths[] = {"sys", "sysrq-trigger"};
        const unsigned attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        int target, proc = -1, fd, r;

        target = tree_open_dir(rootfd, "proc");
        if (target < 0)
                return target;
        r = fs_mount(target, "proc", NULL, attrs, &proc);
        close(target);
        for (size_t i = 0; i < ARRAY_SIZE(ro_paths) && r >= 0; i++) {
                fd = xopenat2(proc, ro_paths[i], O_PATH | O_NOFOLLOW, RESOLVE_BENEATH);
                if (fd == -ENOENT) /* no CONFIG_MAGIC_SYSRQ */
                        continue;
                r = fd;
                if (fd >= 0) {
                        r = bind_at(fd, proc, ro_paths[i], attrs | MOUNT_ATTR_RDONLY, false);
                        close(fd);
                }
        }
        if (proc >= 0)
                close(proc);
        return r < 0 ? r : 0;
}

/* Mounts a fresh tmpfs on the tree's directory `path`; *ret_mnt as fs_mount. */
static int init_tmpfs(int rootfd, const char *path, const char *mode, int *ret_mnt) {
        const char *const opts[] = {"mode", mode, NULL};
        int target = tree_open_dir(rootfd, path);
        if (target < 0)
                return target;
        int r = fs_mount(target, "tmpfs", opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, ret_mnt);
        close(target);
        return r;
}

/* /usr/sbin/policy-rc.d: the source of a bind must be a mount of this
 * namespace, so the script is written to the new /run, bound, and unlinked
 * there again (the bind keeps the inode). */
static int init_policy_rc_d(int rootfd, int run, const struct tmpfs_dirs *t) {
        static const char script[] = POLICY_RC_D;
        int fd, target, r;

        fd = openat(run, POLICY_TMP_NAME, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
        if (fd < 0)
                return -errno;
        r = write(fd, script, sizeof script - 1) == (ssize_t)(sizeof script - 1) ? 0 : -EIO;
        if (r == 0)
                r = neg_errno(fchmod(fd, 0755));
        close(fd);
        if (r == 0 && (r = target = init_file_target(rootfd, t, "usr/sbin/policy-rc.d")) >= 0) {
                r = bind_at(target, run, POLICY_TMP_NAME,
                            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, false);
                close(target);
        }
        (void)unlinkat(run, POLICY_TMP_NAME, 0);
        return r < 0 ? r : 0;
}

static int init_bind(int rootfd, const struct sandbox_bind *b) {
        /* tree_path was checked by bind_path_valid: "/run/..." or "/tmp/..." */
        const char *base = startswith(b->tree_path, "/run/") ? "run" : "tmp";
        const char *rest = b->tree_path + strlen("/run/");
        int src = -1, basefd = -1, target = -1, r;
        struct stat st;

        src = open_tree(AT_FDCWD, b->host_path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (src < 0)
                return -errno;
        r = neg_errno(fstat(src, &st));
        if (r >= 0)
                r = basefd = tree_open_dir(rootfd, base);
        /* RESOLVE_NO_XDEV: mount points are made in the tmpfs only, never
         * inside an earlier bind (which would create them on the host) */
        if (r >= 0)
                r = target = tree_mkpath(basefd, rest, S_ISDIR(st.st_mode) ? S_IFDIR : S_IFREG,
                                         RESOLVE_NO_XDEV, NULL);
        if (r >= 0)
                r = attach_tree(src, target,
                                MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                        (b->read_only ? MOUNT_ATTR_RDONLY : 0),
                                false);
        if (target >= 0)
                close(target);
        if (basefd >= 0)
                close(basefd);
        close(src);
        return r < 0 ? r : 0;
}

/* For the children's setup code: on failure, record what failed and
 * return. The fds such a path leaves open die with the process, which
 * exits right after reporting. */
#define TRY(what, expr)                                                        \
        do {                                                                   \
                int _r = (expr);                                               \
                if (_r < 0) {                                                  \
                        *ret_stage = (what);                                   \
                        return _r;                                             \
                }                                                              \
        } while (0)

static int init_setup(const struct plan *p, const char **ret_stage) {
        const struct sandbox_opts *o = p->o;
        const unsigned sys_attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                   MOUNT_ATTR_NOEXEC;
        struct tmpfs_dirs t;
        int rootfd, fd, run = -1, r;
        struct stat st;

        TRY("unshare mount namespace", neg_errno(unshare(CLONE_NEWNS)));
        if (o->bare) /* the overlay only (validate: no binds) */
                return 0;
        TRY("open mountpoint",
            rootfd = neg_errno(open(o->mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC)));

        TRY("mount /proc", init_proc(rootfd));

        TRY("open /sys", fd = tree_open_dir(rootfd, "sys"));
        r = fs_mount(fd, "sysfs", NULL, sys_attrs, NULL);
        if (r < 0) /* e.g. not allowed for this network namespace */
                r = bind_at(fd, AT_FDCWD, "/sys", sys_attrs, true);
        close(fd);
        TRY("mount /sys", r);

        TRY("mount /dev", init_setup_dev(rootfd));
        TRY("mount /run", init_tmpfs(rootfd, "run", "755", &run));
        TRY("mount /tmp", init_tmpfs(rootfd, "tmp", "1777", NULL));
        TRY("resolve /run and /tmp", tmpfs_dirs_resolve(rootfd, &t));
        r = init_policy_rc_d(rootfd, run, &t);
        close(run);
        TRY("bind /usr/sbin/policy-rc.d", r);

        if (stat("/etc/resolv.conf", &st) == 0 && !S_ISDIR(st.st_mode)) {
                TRY("open /etc/resolv.conf", fd = init_file_target(rootfd, &t, "etc/resolv.conf"));
                r = bind_at(fd, AT_FDCWD, "/etc/resolv.conf",
                            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, false);
                close(fd);
                TRY("bind /etc/resolv.conf", r);
        }

        for (size_t i = 0; i < o->nbinds; i++)
                TRY("bind", init_bind(rootfd, &o->binds[i]));
        close(rootfd);
        return 0;
}

_noreturn_ static void init_main(const struct plan *p, int alive_fd) {
        const char *stage = NULL;
        pid_t cmd;
        int r, status;

        /* the helper may have died before PDEATHSIG was set: then the pipe
         * it holds open is already closed */
        struct pollfd pfd = {.fd = alive_fd, .events = POLLIN};
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || poll(&pfd, 1, 0) != 0)
                _exit(1);
        close(alive_fd);
        (void)prctl(PR_SET_NAME, "kiln-init");

        r = init_setup(p, &stage);
        if (r < 0) {
                send_msg(p->msg_fd, MSG_ERROR, -r, stage);
                _exit(1);
        }
        cmd = fork();
        if (cmd == 0)
                command_main(p);
        if (cmd < 0) {
                send_msg(p->msg_fd, MSG_ERROR, errno, "fork command");
                _exit(1);
        }
        /* pid 1: reap every process, orphans included, until the command
         * exits; leaving kills the rest of the namespace */
        for (;;) {
                pid_t w = waitpid(-1, &status, 0);
                if (w == cmd) {
                        send_msg(p->msg_fd, MSG_STATUS, status, NULL);
                        _exit(0);
                }
                if (w < 0 && errno != EINTR)
                        _exit(1);
        }
}

/* ---- the helper: namespaces, the tree, placeholders --------------------- */

struct helper {
        const struct plan *p;
        int rootfd;
        struct placeholders ph;
        struct tmpfs_dirs t;
        char ovl[OVL_OPTS_MAX];
        int layer_fds[SANDBOX_MAX_LAYERS + 2];
        size_t nlayer_fds;
};

static int helper_open_layer(struct helper *h, struct buf *b, const char *path) {
        int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        h->layer_fds[h->nlayer_fds++] = fd;
        buf_add_fdpath(b, fd);
        return 0;
}

static int helper_mount_tree(struct helper *h, const char **ret_stage) {
        const struct sandbox_opts *o = h->p->o;
        struct buf b = {h->ovl, sizeof h->ovl, 0, false};
        int r = 0;

        if (o->nlower == 0) {
                TRY("bind upper", neg_errno(mount(o->upper, o->mountpoint, NULL, MS_BIND, NULL)));
                return 0;
        }
        /* The layers' fds must be opened in this mount namespace (overlayfs
         * refuses layers on mounts of another one). */
        buf_adds(&b, "lowerdir=");
        for (size_t i = 0; i < o->nlower && r >= 0; i++) {
                if (i)
                        buf_adds(&b, ":");
                r = helper_open_layer(h, &b, o->lower[i]);
        }
        TRY("open lower layer", r);
        buf_adds(&b, ",upperdir=");
        TRY("open upper layer", helper_open_layer(h, &b, o->upper));
        buf_adds(&b, ",workdir=");
        TRY("open work dir", helper_open_layer(h, &b, o->work));
        buf_adds(&b, ",index=off,metacopy=off,redirect_dir=off");
        TRY("overlay options", b.overflow ? -E2BIG : 0);
        r = neg_errno(mount("overlay", o->mountpoint, "overlay", 0, h->ovl));
        while (h->nlayer_fds > 0)
                close(h->layer_fds[--h->nlayer_fds]);
        TRY("mount overlay", r);
        return 0;
}

/* Makes sure the tree has `path` to mount on (a directory for S_IFDIR, a
 * non-directory for S_IFREG), creating and recording what is missing;
 * nothing for files the tree resolves into /run or /tmp (tmpfs, see
 * init_file_target). */
static int helper_ensure(struct helper *h, const char *path, mode_t type) {
        char canon[PATH_MAX];
        int r = tree_resolve(h->rootfd, path, canon);
        if (r < 0)
                return r;
        if (r == 0 && type == S_IFREG && in_tmpfs(&h->t, canon))
                return 0;
        if (!canon[0]) /* a symlink to the root itself */
                return type == S_IFDIR ? 0 : -EISDIR;
        int fd = tree_mkpath(h->rootfd, canon, type, 0, &h->ph);
        if (fd < 0)
                return fd;
        close(fd);
        return 0;
}

static int loopback_up(void) {
        struct ifreq ifr = {0};
        int s, r = 0;

        s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return -errno;
        memcpy(ifr.ifr_name, "lo", 3);
        if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                r = -errno;
        else {
                ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
                if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
                        r = -errno;
        }
        close(s);
        return r;
}

static int helper_setup(struct helper *h, const char **ret_stage) {
        static const char *const dirs[] = {"proc", "sys", "dev", "run", "tmp"};
        const struct sandbox_opts *o = h->p->o;
        int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC |
                    (o->network ? 0 : CLONE_NEWNET);
        struct stat st;

        TRY("unshare namespaces", neg_errno(unshare(flags)));
        TRY("make mounts private", neg_errno(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)));
        int r = helper_mount_tree(h, ret_stage); /* sets its own stage */
        if (r < 0)
                return r;
        TRY("open mountpoint",
            h->rootfd = neg_errno(open(o->mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC)));
        for (size_t i = 0; i < ARRAY_SIZE(dirs) && !o->bare; i++)
                TRY("create mount point", helper_ensure(h, dirs[i], S_IFDIR));
        if (!o->bare) {
                TRY("resolve /run and /tmp", tmpfs_dirs_resolve(h->rootfd, &h->t));
                TRY("create /usr/sbin/policy-rc.d",
                    helper_ensure(h, "usr/sbin/policy-rc.d", S_IFREG));
                if (stat("/etc/resolv.conf", &st) == 0 && !S_ISDIR(st.st_mode))
                        TRY("create /etc/resolv.conf",
                            helper_ensure(h, "etc/resolv.conf", S_IFREG));
        }
        TRY("set hostname", neg_errno(sethostname(h->p->hostname, strlen(h->p->hostname))));
        if (!o->network)
                TRY("bring up lo", loopback_up());
        return 0;
}

/* Closes every fd but stdio, the message pipe and the command's stdio fds:
 * kiln's other threads may have pipes open whose EOF someone waits for. */
static void close_inherited_fds(const struct plan *p) {
        const struct sandbox_opts *o = p->o;
        int keep[7 + SANDBOX_MAX_PASS_FDS] = {0, 1, 2, p->msg_fd, o->stdin_fd, o->stdout_fd,
                                              o->stderr_fd};
        size_t n = 7;

        for (size_t i = 0; i < o->npass_fds; i++) /* validate() bounds npass_fds */
                keep[n++] = o->pass_fds[i];

        for (size_t i = 1; i < n; i++) /* insertion sort */
                for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
                        int x = keep[j];
                        keep[j] = keep[j - 1];
                        keep[j - 1] = x;
                }
        int from = 0;
        for (size_t i = 0; i < n; i++) {
                if (keep[i] < from)
                        continue;
                if (keep[i] > from)
                        (void)close_range((unsigned)from, (unsigned)keep[i] - 1, 0);
                from = keep[i] + 1;
        }
        (void)close_range((unsigned)from, ~0U, 0);
}

static bool term_pending(void) {
        sigset_t pending;
        return sigpending(&pending) == 0 && sigismember(&pending, SIGTERM);
}

_noreturn_ static void helper_main(const struct plan *p) {
        struct helper h = {.p = p, .rootfd = -1};
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigset_t all, watch;
        const char *stage = NULL;
        int alive[2], sfd = -1, r, status;
        pid_t init;

        /* kiln's handlers make no sense here; block everything and take
         * SIGTERM (kiln died, or the timeout) and SIGCHLD from a signalfd */
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void)sigaction(sig, &dfl, NULL);
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != p->kiln_pid)
                _exit(1);
        (void)prctl(PR_SET_NAME, "kiln-sandbox");
        close_inherited_fds(p);

        r = helper_setup(&h, &stage);
        if (r >= 0) {
                sigemptyset(&watch);
                sigaddset(&watch, SIGTERM);
                sigaddset(&watch, SIGCHLD);
                stage = "signalfd";
                r = sfd = neg_errno(signalfd(-1, &watch, SFD_CLOEXEC));
        }
        if (r >= 0) {
                stage = "pipe";
                r = neg_errno(pipe2(alive, O_CLOEXEC));
        }
        if (r < 0) {
                send_msg(p->msg_fd, MSG_ERROR, -r, stage);
                placeholders_remove(&h.ph);
                _exit(1);
        }
        if (term_pending()) { /* timed out or kiln died during setup */
                placeholders_remove(&h.ph);
                _exit(1);
        }
        init = fork();
        if (init == 0) {
                close(alive[1]);
                close(sfd);
                init_main(p, alive[0]);
        }
        close(alive[0]);
        if (init < 0) {
                send_msg(p->msg_fd, MSG_ERROR, errno, "fork init");
                placeholders_remove(&h.ph);
                _exit(1);
        }
        for (;;) {
                struct signalfd_siginfo si;
                ssize_t n = read(sfd, &si, sizeof si);
                if (n < 0 && errno != EINTR)
                        (void)kill(init, SIGKILL); /* cannot wait for orders */
                else if (n == sizeof si && si.ssi_signo == SIGTERM)
                        (void)kill(init, SIGKILL);
                pid_t w = waitpid(init, &status, n < 0 ? 0 : WNOHANG);
                if (w == init || (w < 0 && errno == ECHILD))
                        break;
        }
        /* init is gone, so is namespace B: the placeholders are plain files
         * again in this namespace */
        placeholders_remove(&h.ph);
        _exit(0);
}

/* ---- sandbox_run ------------------------------------------------------- */

/* A bind's tree path: "/run/..." or "/tmp/...", no empty, "." or ".."
 * components, no trailing '/'. */
static bool bind_path_valid(const char *path) {
        if (!path || strlen(path) >= PATH_MAX ||
            !(startswith(path, "/run/") || startswith(path, "/tmp/")))
                return false;
        for (const char *c = path + strlen("/run/");;) {
                const char *end = strchrnul(c, '/');
                size_t n = (size_t)(end - c);
                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                if (!*end)
                        return true;
                c = end + 1;
        }
}

static int validate(const struct sandbox_opts *o) {
        if (!o || !o->argv || !o->argv[0] || !o->upper || !o->mountpoint ||
            (o->mode != SANDBOX_CHROOT && o->mode != SANDBOX_HOST))
                return -EINVAL;
        if (o->nlower > SANDBOX_MAX_LAYERS)
                return -E2BIG;
        if (o->nlower > 0 && (!o->lower || !o->work))
                return -EINVAL;
        for (size_t i = 0; i < o->nlower; i++)
                if (!o->lower[i])
                        return -EINVAL;
        if (o->hostname && (!o->hostname[0] || strlen(o->hostname) > HOST_NAME_MAX))
                return -EINVAL;
        if (o->nbinds > 0 && !o->binds)
                return -EINVAL;
        if (o->npass_fds > SANDBOX_MAX_PASS_FDS || (o->npass_fds > 0 && !o->pass_fds))
                return -EINVAL;
        for (size_t i = 0; i < o->npass_fds; i++)
                if (o->pass_fds[i] < 0)
                        return -EINVAL;
        if (o->bare && (o->mode != SANDBOX_HOST || o->nbinds > 0))
                return -EINVAL;
        for (size_t i = 0; i < o->nbinds; i++)
                if (!o->binds[i].host_path || !bind_path_valid(o->binds[i].tree_path))
                        return -EINVAL;
        return 0;
}

static void plan_init(struct plan *p, const struct sandbox_opts *o, int msg_fd) {
        static const char *const base_env[] = {
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME=/root", "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"};
        const char *term = getenv("TERM");
        size_t n = 0;

        p->o = o;
        p->hostname = o->hostname ? o->hostname : DEFAULT_HOSTNAME;
        p->kiln_pid = getpid();
        p->msg_fd = msg_fd;
        if (!(o->stdout_fd >= 0 && isatty(o->stdout_fd) && term && term[0] &&
              strlen(term) < sizeof p->term - strlen("TERM=")))
                term = "dumb";
        snprintf(p->term, sizeof p->term, "TERM=%s", term);
        for (size_t i = 0; i < ARRAY_SIZE(base_env); i++)
                p->default_env[n++] = (char *)base_env[i];
        p->default_env[n++] = p->term;
        p->default_env[n] = NULL;
        p->envp = o->envp ? o->envp : p->default_env;
}

struct outcome {
        int err; /* first MSG_ERROR, as -errno */
        bool have_status;
        int status;
};

/* Reads the messages available on the non-blocking fd; false at EOF. */
static bool read_msgs(int fd, struct outcome *out) {
        struct msg m;
        for (;;) {
                ssize_t n = read(fd, &m, sizeof m);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return true; /* EAGAIN */
                if (n == 0)
                        return false;
                if (n != sizeof m)
                        continue; /* cannot happen: writes are atomic */
                if (m.kind == MSG_ERROR && !out->err)
                        out->err = m.value > 0 ? -m.value : -EIO;
                else if (m.kind == MSG_STATUS) {
                        out->have_status = true;
                        out->status = m.value;
                }
        }
}

int sandbox_run(const struct sandbox_opts *opts, struct sandbox_result *ret) {
        _cleanup_free_ struct plan *p = NULL;
        _cleanup_close_ int msg_r = -1, msg_w = -1, pidfd = -1;
        struct outcome out = {0};
        bool term_sent = false, msgs_open = true;
        uint64_t start, kill_at = 0;
        int fds[2], r, status;
        pid_t pid;

        if (!ret)
                return -EINVAL;
        r = validate(opts);
        if (r < 0)
                return r;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        msg_r = fds[0];
        msg_w = fds[1];
        if (fcntl(msg_r, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        p = xcalloc(1, sizeof *p);
        plan_init(p, opts, msg_w);

        start = now_ms();
        pid = fork();
        if (pid == 0)
                helper_main(p);
        if (pid < 0)
                return -errno;
        close(msg_w);
        msg_w = -1;
        pidfd = pidfd_open(pid, 0);
        if (pidfd < 0) {
                r = -errno;
                (void)kill(pid, SIGKILL);
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                return r;
        }
        if (opts->timeout_ms && opts->timeout_ms < UINT64_MAX - start)
                kill_at = start + opts->timeout_ms;

        for (;;) {
                int timeout = -1;
                if (kill_at) {
                        uint64_t now = now_ms();
                        if (now >= kill_at) {
                                /* first the helper's orderly shutdown, then,
                                 * should it hang, SIGKILL */
                                int sig = term_sent ? SIGKILL : SIGTERM;
                                (void)pidfd_send_signal(pidfd, sig, NULL, 0);
                                kill_at = term_sent ? 0 : now + KILL_GRACE_MS;
                                term_sent = true;
                                continue;
                        }
                        timeout = (int)(kill_at - now < INT_MAX ? kill_at - now : INT_MAX);
                }
                struct pollfd pfd[2] = {{.fd = pidfd, .events = POLLIN},
                                        {.fd = msgs_open ? msg_r : -1, .events = POLLIN}};
                if (poll(pfd, 2, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno; /* cannot wait: stop the sandbox */
                        (void)pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
                        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                                ;
                        return r;
                }
                if (pfd[1].revents)
                        msgs_open = read_msgs(msg_r, &out);
                if (pfd[0].revents)
                        break;
        }
        /* ECHILD: someone else reaped it (SIGCHLD ignored); the messages
         * still say what happened */
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        (void)read_msgs(msg_r, &out);
        if (out.err)
                return out.err;

        struct sandbox_result res = {.elapsed_ms = now_ms() - start};
        if (out.have_status) {
                if (WIFEXITED(out.status))
                        res.exit_code = WEXITSTATUS(out.status);
                else if (WIFSIGNALED(out.status)) {
                        res.signal = WTERMSIG(out.status);
                        res.exit_code = 128 + res.signal;
                }
        } else if (term_sent) {
                res.timed_out = true;
                res.signal = SIGKILL;
                res.exit_code = 128 + SIGKILL;
        } else
                return -EIO; /* the helper died without a word */
        *ret = res;
        return 0;
}

/* ---- sandbox_probe ----------------------------------------------------- */

static bool has_cap_sys_admin(void) {
        _cleanup_free_ char *status = NULL;
        size_t len;
        if (read_file("/proc/self/status", 1 << 16, &status, &len) < 0)
                return false;
        const char *cap = strstr(status, "\nCapEff:");
        if (!cap)
                return false;
        unsigned long long eff = strtoull(cap + strlen("\nCapEff:"), NULL, 16);
        return eff & (1ULL << 21); /* CAP_SYS_ADMIN */
}

static bool kernel_has_overlay(void) {
        _cleanup_free_ char *fs = NULL;
        size_t len;
        return read_file("/proc/filesystems", 1 << 16, &fs, &len) >= 0 &&
               strstr(fs, "\toverlay\n") != NULL;
}

/* In a child: the namespaces sandbox_run creates, then a tiny overlay on a
 * tmpfs mounted over /tmp (privately: the host's /tmp is untouched). */
_noreturn_ static void probe_child(int msg_fd, const char *ovl_opts) {
        static const char *const dirs[] = {"/tmp/l", "/tmp/u", "/tmp/w", "/tmp/m"};
        const char *stage = "unshare";

        if (unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET) < 0)
                goto fail;
        stage = "private";
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                goto fail;
        stage = "tmpfs";
        if (mount("tmpfs", "/tmp", "tmpfs", 0, "size=64k") < 0)
                goto fail;
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
                if (mkdir(dirs[i], 0755) < 0)
                        goto fail;
        stage = "overlay";
        if (mount("overlay", "/tmp/m", "overlay", 0, ovl_opts) < 0)
                goto fail;
        _exit(0);
fail:
        send_msg(msg_fd, MSG_ERROR, errno, stage);
        _exit(1);
}

int sandbox_probe(const char **ret_why) {
        static const char ovl_opts[] = "lowerdir=/tmp/l,upperdir=/tmp/u,workdir=/tmp/w";
        _cleanup_close_ int msg_r = -1, msg_w = -1;
        struct msg m = {0};
        const char *why = NULL;
        int fds[2], status;
        pid_t pid;

        if (ret_why)
                *ret_why = NULL;
        if (geteuid() != 0 && !has_cap_sys_admin()) {
                if (ret_why)
                        *ret_why = "sandboxes need root (CAP_SYS_ADMIN) to mount";
                return -EPERM;
        }
        if (pipe2(fds, O_CLOEXEC) < 0)
                goto no_process;
        msg_r = fds[0];
        msg_w = fds[1];
        pid = fork();
        if (pid < 0)
                goto no_process;
        if (pid == 0)
                probe_child(msg_w, ovl_opts);
        close(msg_w);
        msg_w = -1;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        ssize_t n = read(msg_r, &m, sizeof m);
        if (n != sizeof m || m.kind != MSG_ERROR) {
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                        return 0;
                m.value = EIO;
                memcpy(m.stage, "child", 6);
        }
        if (streq(m.stage, "unshare"))
                why = "cannot create namespaces (unshare failed: a restricted container or "
                      "seccomp profile?)";
        else if (streq(m.stage, "overlay"))
                why = kernel_has_overlay()
                              ? "overlayfs cannot be mounted here"
                              : "the kernel has no overlayfs (try: modprobe overlay)";
        else
                why = "cannot mount in a new mount namespace";
        if (ret_why)
                *ret_why = why;
        return m.value > 0 ? -m.value : -EIO;
no_process:
        if (ret_why)
                *ret_why = "cannot start a process";
        return -errno;
}
